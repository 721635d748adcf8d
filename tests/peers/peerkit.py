"""Reference peers as child processes that speak JSON lines: the tests' side of the protocol.

Two kinds of peer, both real libzmq:

- `js_peer`: a zeromq.js 6 socket (its bundled libzmq 4.3.5 has the draft sockets) run by
  ``node tests/peers/js/peer.js``. Install with ``npm ci`` in ``tests/peers/js``.
- `system_peer`: Debian's ``python3-zmq`` (libzmq 4.3.4 built with OpenPGM) run by
  ``/usr/bin/python3 tests/peers/zmq_peer.py``. Install with ``apt-get install python3-zmq``.

The engine's side of a test can run the same zmq_peer.py with ``--engine`` (`engine_argv`).

Each prints ``{"event": ...}`` lines and takes one JSON command per line (see the scripts).
`LinePeer` collects the events on a thread and waits on them with a deadline; it is killed by
PID at `close`, and every peer a test starts is closed by the `peers` fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loadtest.netns import kill

HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "js"
SYSTEM_PYTHON = "/usr/bin/python3"
#: Bound on any wait for a peer's event: generous, the 2-core machine is shared.
WAIT = 15.0


def js_unavailable() -> str | None:
    """Why zeromq.js peers cannot run here, or None."""
    if shutil.which("node") is None:
        return "needs node (zeromq.js peers)"
    if not (JS_DIR / "node_modules" / "zeromq").is_dir():
        return f"needs zeromq.js: run `npm ci` in {JS_DIR}"
    return None


_system_reason: list[str | None] = []


def system_unavailable(need_pgm: bool = True) -> str | None:
    """Why Debian's python3-zmq (with OpenPGM) cannot run here, or None."""
    if not _system_reason:
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            _system_reason.append(f"needs {SYSTEM_PYTHON}")
        else:
            probe = subprocess.run(
                [SYSTEM_PYTHON, "-c", "import zmq; print(zmq.has('pgm'))"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if probe.returncode != 0:
                _system_reason.append("needs python3-zmq for /usr/bin/python3 (apt-get install)")
            elif probe.stdout.strip() != "True":
                _system_reason.append("system libzmq is built without OpenPGM")
            else:
                _system_reason.append(None)
    reason = _system_reason[0]
    if reason == "system libzmq is built without OpenPGM" and not need_pgm:
        return None
    return reason


class LinePeer:
    """A child process speaking JSON lines; events collected on a thread."""

    def __init__(self, argv: Sequence[str], log: Path, *, spawn: Callable[..., Any] | None = None):
        self.log = log
        popen: dict[str, Any] = dict(
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        with log.open("ab") as err:
            if spawn is None:
                self.process = subprocess.Popen(list(argv), stderr=err, **popen)
            else:  # e.g. VethPair.spawn: the same, inside a network namespace
                self.process = spawn(list(argv), stderr=err, **popen)
        self.events: list[dict[str, Any]] = []
        self._seen = 0
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:]

    def next_event(self, kind: str, timeout: float = WAIT) -> dict[str, Any]:
        """The next not yet taken event of `kind` (events of other kinds stay for later)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events[self._seen :]:
                    if event.get("_taken"):
                        continue
                    if event["event"] == "error":  # a command failed: say so at once
                        event["_taken"] = True
                        raise AssertionError(f"peer error: {event.get('message')}")
                    if event["event"] == kind:
                        event["_taken"] = True
                        return event
                while self._seen < len(self.events) and self.events[self._seen].get("_taken"):
                    self._seen += 1
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise TimeoutError(f"{self.process.args!r}: no {kind!r} event\n{self._tail()}")
                self._changed.wait(left)

    def messages(self, count: int, timeout: float = WAIT) -> list[dict[str, Any]]:
        """The next `count` received messages, in arrival order."""
        return [self.next_event("message", timeout) for _ in range(count)]

    def command(self, **cmd: Any) -> None:
        """Send one command and wait until the peer says it is done."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(cmd) + "\n")
        self.process.stdin.flush()
        self.next_event("done")

    def close(self) -> None:
        """SIGKILL by PID, then reap."""
        kill(self.process)


def js_argv(socket_type: str, endpoint: str, mode: str, **options: object) -> list[str]:
    return ["node", str(JS_DIR / "peer.js"), socket_type, endpoint, mode] + [
        f"{k}={v}" for k, v in options.items()
    ]


def system_argv(socket_type: str, endpoint: str, mode: str, **options: object) -> list[str]:
    return [SYSTEM_PYTHON, str(HERE / "zmq_peer.py"), socket_type, endpoint, mode] + [
        f"{k}={v}" for k, v in options.items()
    ]


def engine_argv(socket_type: str, endpoint: str, mode: str, **options: object) -> list[str]:
    """The engine's sync face running zmq_peer.py, in this venv."""
    return [sys.executable, str(HERE / "zmq_peer.py"), "--engine", socket_type, endpoint, mode] + [
        f"{k}={v}" for k, v in options.items()
    ]


def codec_argv(role: str, endpoint: str, **options: object) -> list[str]:
    """The engine's sans-I/O PGM codecs over plain sockets (pgm_codec_peer.py), in this venv."""
    return [sys.executable, str(HERE / "pgm_codec_peer.py"), role, endpoint] + [
        f"{k}={v}" for k, v in options.items()
    ]


def udp_codec_argv(role: str, target: str, **options: object) -> list[str]:
    """The engine's udp datagram codec over a plain socket (udp_codec_peer.py), in this venv."""
    return [sys.executable, str(HERE / "udp_codec_peer.py"), role, target] + [
        f"{k}={v}" for k, v in options.items()
    ]


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to right now, for a peer process to bind (see loadtest.ports)."""
    import socket

    from loadtest.ports import unused_port

    return unused_port(socket.SOCK_DGRAM, host)
