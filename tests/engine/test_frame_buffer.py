"""A Frame offers the buffer protocol, as pyzmq's does: `memoryview(frame)` (what
`numpy.frombuffer(frame, dtype)` uses) reads a received or a made frame without `.bytes`.

A class written in Python can offer it from Python 3.12 on (PEP 688, `__buffer__`), so the
engine's half runs under a 3.12+ interpreter found on this machine (the engine needs only the
standard library); pyzmq's half runs in this one. Both print the same lines, compared.
The one difference left: pyzmq's view is writable, the engine's is read-only (its frames are
`bytes`; a writable one would cost a copy of every frame viewed).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]

#: The same lines for both libraries; `lib` is the module name given as argv[1].
SCRIPT = r"""
import importlib, struct, sys
lib = importlib.import_module(sys.argv[1])
ctx = lib.Context()
pull = ctx.socket(lib.PULL)
pull.bind("tcp://127.0.0.1:0")
push = ctx.socket(lib.PUSH)
push.connect(pull.getsockopt(lib.LAST_ENDPOINT))
push.send(struct.pack("<3i", 7, -8, 9))
assert pull.poll(10_000)
received = pull.recv(copy=False)
view = memoryview(received)
print("received", bytes(view), view.nbytes, view.cast("i").tolist())
made = lib.Frame(b"abcd")
print("made", bytes(memoryview(made)), len(memoryview(made)))
print("bytearray", bytearray(received) == bytearray(struct.pack("<3i", 7, -8, 9)))
push.close(0)
pull.close(0)
ctx.term()
"""


def _python_with_pep688() -> str | None:
    """A Python 3.12+ interpreter that runs here: this one, one on PATH, or pyenv's."""
    if sys.version_info >= (3, 12):
        return sys.executable
    home = os.path.expanduser("~")
    candidates = [f"/usr/bin/python3.{minor}" for minor in (14, 13, 12)]
    candidates += sorted(glob.glob(f"{home}/.pyenv/versions/3.1[2-9]*/bin/python3"), reverse=True)
    for path in candidates:
        if os.access(path, os.X_OK):
            probe = subprocess.run([path, "-c", "import sys; assert sys.version_info >= (3, 12)"])
            if probe.returncode == 0:
                return path
    return None


def _run(python: str, lib: str, pythonpath: str | None) -> str:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(
        [python, "-c", SCRIPT, lib], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_memoryview_of_a_frame_reads_its_bytes_as_in_pyzmq() -> None:
    python = _python_with_pep688()
    if python is None:
        pytest.skip(
            "no Python 3.12 or later here: before 3.12 a Python class has no buffer protocol"
        )
    theirs = _run(sys.executable, "zmq", None)
    ours = _run(python, "engine", str(REPO))
    assert "received b'\\x07" in theirs  # the script ran to its end on libzmq
    assert ours == theirs
