"""A child made by fork() that closes, terminates or destroys what it inherited returns at
once and leaves the parent's sockets working, as with libzmq, where those calls in a child
do nothing: the connections and the I/O thread are the parent's.

The engine's child waited for the parent's I/O thread, which does not exist in the child, and
hung for ever in `close()`, `term()` or `destroy()`.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS, tcp_pull_and_push

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
]

CHILD_CALLS = {
    "close": lambda ctx, push, pull: push.close(),
    "close-linger-0": lambda ctx, push, pull: pull.close(0),
    "term": lambda ctx, push, pull: ctx.term(),
    "destroy": lambda ctx, push, pull: ctx.destroy(0),
}


def _run_in_child(call: Any, *args: Any) -> int:
    """Fork; the child runs `call` and exits 0 (1 if it raised). The child's exit status, or
    a failure if it has not ended within WAIT_MS (then it is killed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:
        status = 0
        try:
            call(*args)
        except BaseException:
            status = 1
        os._exit(status)
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)  # a child process has no event to wait on but its end
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the child hung")


@LIBS
@pytest.mark.parametrize("what", sorted(CHILD_CALLS))
def test_child_ending_inherited_objects_returns_and_spares_the_parent(lib: Any, what: str) -> None:
    ctx = lib.Context()
    try:
        pull, push = tcp_pull_and_push(lib, ctx)
        push.send(b"before the fork")
        assert pull.poll(WAIT_MS) and pull.recv() == b"before the fork"
        assert _run_in_child(CHILD_CALLS[what], ctx, push, pull) == 0
        assert not push.closed and not pull.closed and not ctx.closed
        push.send(b"after the child")
        assert pull.poll(WAIT_MS) and pull.recv() == b"after the child"
    finally:
        ctx.destroy(0)
