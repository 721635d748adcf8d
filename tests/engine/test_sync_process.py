"""Processes: a forked child with its own context, interpreter exit with sockets left open,
and gevent-patched programs (as Locust runs them) in fresh interpreters.

Every subprocess is started through the `spawn` fixture (conftest.py), which kills it by PID at
teardown.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import zmq as pyzmq
from enginekit import Spawn

import engine as zmq

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
WAIT_MS = 10_000
#: Upper bound for a child interpreter to finish; a hang fails the test instead of blocking.
EXIT_S = 30.0
GEVENT_S = 90.0


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    """Wait for `proc` to exit by itself; its stdout. If it hangs, kill it and fail with
    what it printed (scripts arm faulthandler to dump their stacks before that)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the child process did not exit within {timeout}s\n{out}\n{err}")
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{out}\n{err}"
    return out


# -- fork -----------------------------------------------------------------------------------------


def _child_round_trip(endpoint: str) -> None:
    """In the forked child: its own context, one request to the parent."""
    context = zmq.Context()
    req = context.socket(zmq.REQ)
    req.rcvtimeo = WAIT_MS
    req.connect(endpoint)
    req.send_string(f"hello from {os.getpid()}")
    ok = req.recv_string() == "hello child"
    context.destroy(linger=0)
    sys.exit(0 if ok else 3)


def test_forked_child_with_its_own_context_talks_to_parent() -> None:
    """A multiprocessing 'fork' child makes its own context and round-trips with the parent."""
    context = zmq.Context()
    try:
        rep = context.socket(zmq.REP)
        rep.rcvtimeo = WAIT_MS
        endpoint = rep.bind("tcp://127.0.0.1:*")
        child = multiprocessing.get_context("fork").Process(
            target=_child_round_trip, args=(endpoint,)
        )
        child.start()
        try:
            assert rep.recv_string() == f"hello from {child.pid}"
            rep.send_string("hello child")
            child.join(EXIT_S)
            assert child.exitcode == 0
        finally:
            if child.is_alive():
                os.kill(child.pid, signal.SIGKILL)
                child.join()
        # The parent's context is unharmed by the fork.
        req = context.socket(zmq.REQ)
        req.rcvtimeo = WAIT_MS
        req.connect(endpoint)
        req.send(b"parent again")
        assert rep.recv() == b"parent again"
    finally:
        context.destroy(linger=0)


# -- interpreter exit -----------------------------------------------------------------------------

EXIT_SCRIPTS = {
    "unreachable-peer": """
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.connect(f"tcp://127.0.0.1:{port}")
        for _ in range(100):
            push.send(b"never delivered")
    """,
    "instance-and-silent-listener": """
        ctx = zmq.Context.instance()
        for kind in (zmq.DEALER, zmq.REQ):
            s = ctx.socket(kind)
            s.connect(f"tcp://127.0.0.1:{silent}")  # accepts TCP, never speaks ZMTP
            s.send(b"stuck")
    """,
    "peer-not-reading": """
        ctx = zmq.Context()
        push = ctx.socket(zmq.PUSH)
        push.connect(f"tcp://127.0.0.1:{slow}")
        try:
            for _ in range(500):
                push.send(b"x" * 100_000, zmq.DONTWAIT)
        except zmq.Again:
            pass
    """,
    "blocked-daemon-thread": """
        import threading
        ctx = zmq.Context()
        pull = ctx.socket(zmq.PULL)
        pull.bind("tcp://127.0.0.1:*")
        push = ctx.socket(zmq.PUSH)
        push.connect(f"tcp://127.0.0.1:{port}")
        push.send(b"pending")
        threading.Thread(target=pull.recv, daemon=True).start()
    """,
}


@pytest.mark.parametrize("scenario", list(EXIT_SCRIPTS))
def test_interpreter_exit_never_hangs(spawn: Spawn, scenario: str) -> None:
    """A script that leaves its context and sockets open, with unsent messages, still exits."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # released below: connections are refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes TCP handshakes; nobody ever reads or writes
    theirs = pyzmq.Context()
    slow = theirs.socket(pyzmq.PULL)
    slow.rcvhwm = 1
    slow.rcvbuf = 4096
    slow_port = slow.bind_to_random_port("tcp://127.0.0.1")  # connected, never reads
    code = "\n".join(
        [
            "import faulthandler",
            "faulthandler.dump_traceback_later(20, exit=True)  # a hang shows its stacks",
            "import engine as zmq",
            f"port, silent, slow = {port}, {silent.getsockname()[1]}, {slow_port}",
            textwrap.dedent(EXIT_SCRIPTS[scenario]),
            "print('leaving', flush=True)",
        ]
    )
    try:
        assert finish(spawn("-c", code), EXIT_S).strip() == "leaving"
    finally:
        silent.close()
        theirs.destroy(linger=0)


# -- gevent ---------------------------------------------------------------------------------------

GEVENT_SCRIPT = """
from gevent import monkey

monkey.patch_all()

import faulthandler
import json
import sys

faulthandler.dump_traceback_later(75, exit=True)  # a hang shows its stacks, then exits

import gevent

import engine as zmq

SERVER, CLIENTS, ROUNDS = sys.argv[1], 200, 5

context = zmq.Context()
server = context.socket(getattr(zmq, SERVER))
endpoint = server.bind("tcp://127.0.0.1:*")
ticks = 0


def serve() -> None:
    while True:
        try:
            msg = server.recv_multipart()
        except zmq.ContextTerminated:
            return
        server.send_multipart(msg[:-1] + [msg[-1].upper()])


def ticker() -> None:
    global ticks
    while True:
        gevent.sleep(0.001)
        ticks += 1


def client(n: int) -> list[bytes]:
    sock = context.socket(zmq.REQ)
    sock.rcvtimeo = 30_000
    sock.connect(endpoint)
    replies = []
    for r in range(ROUNDS):
        sock.send(b"client %d round %d" % (n, r))
        replies.append(sock.recv())
    sock.close(linger=0)
    return replies


gevent.spawn(serve)
tick = gevent.spawn(ticker)
clients = [gevent.spawn(client, n) for n in range(CLIENTS)]
gevent.joinall(clients, timeout=60)
tick.kill()
ok = sum(
    1
    for n, g in enumerate(clients)
    if g.successful() and g.value == [b"CLIENT %d ROUND %d" % (n, r) for r in range(ROUNDS)]
)
errors = sorted({repr(g.exception) for g in clients if g.exception is not None})
print(json.dumps({"ok": ok, "ticks": ticks, "errors": errors}), flush=True)
server.close(linger=0)
context.term()
"""


@pytest.mark.slow
@pytest.mark.parametrize("server", ["ROUTER", "REP"])
def test_gevent_many_greenlets_round_trips(spawn: Spawn, tmp_path: Path, server: str) -> None:
    """Under monkey.patch_all(), 200 greenlets with a REQ socket each make 5 round trips
    against a server greenlet in the same process: no deadlock, every reply right."""
    script = tmp_path / "gevent_reqs.py"
    script.write_text(GEVENT_SCRIPT)
    out = finish(spawn(str(script), server), GEVENT_S)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["ok"] == 200
    assert result["ticks"] > 0  # other greenlets ran while sockets waited: the hub was free


GEVENT_HOST_NAME_SCRIPT = """
from gevent import monkey

monkey.patch_all()

import faulthandler
import sys

faulthandler.dump_traceback_later(25, exit=True)  # a hang shows its stacks, then exits

import engine as zmq

context = zmq.Context()
req = context.socket(zmq.REQ)
req.rcvtimeo = req.sndtimeo = 20_000
req.connect(f"tcp://localhost:{sys.argv[1]}")
req.send(b"by name")
print(req.recv().decode(), flush=True)
pull = context.socket(zmq.PULL)
pull.rcvtimeo = 20_000
pull.bind("tcp://localhost:*")
push = context.socket(zmq.PUSH)
push.connect(pull.getsockopt(zmq.LAST_ENDPOINT).decode().replace("127.0.0.1", "localhost"))
push.send(b"bound by name")
print(pull.recv().decode(), flush=True)
context.destroy(linger=0)
"""


def test_gevent_connect_by_host_name(spawn: Spawn, tmp_path: Path) -> None:
    """Issue 18: under monkey.patch_all(), connect to tcp://localhost:PORT (a name to resolve,
    not an address) reaches a real libzmq peer, and bind to a host name works too."""
    context = pyzmq.Context()
    rep = context.socket(pyzmq.REP)
    try:
        port = rep.bind_to_random_port("tcp://127.0.0.1")
        script = tmp_path / "gevent_host_name.py"
        script.write_text(GEVENT_HOST_NAME_SCRIPT)
        child = spawn(str(script), str(port))
        assert rep.poll(EXIT_S * 1000), "the request never arrived"
        rep.send(rep.recv().upper())
        out = finish(child, EXIT_S)
        assert out.split("\n")[:2] == ["BY NAME", "bound by name"]
    finally:
        rep.close(linger=0)
        context.term()
