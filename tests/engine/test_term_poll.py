"""Once a context's term() has begun, `socket.poll()` on a socket the application has not
closed raises ContextTerminated (ETERM), as every other call on it does, in libzmq and here.

The engine's poll raised ZMQError(ENOTSUP) there (term() closes what is left open, and poll
took that for a socket the application had closed), so the usual worker loop, which polls
and stops on ContextTerminated, died on an error it does not catch when term() began between
two polls.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS

pytestmark = pytest.mark.timeout(60)


def _wait_for_term_to_begin(sock: Any, lib: Any) -> None:
    """Until a call on `sock` says ETERM (term() has begun), or fail at the deadline."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        try:
            sock.getsockopt(lib.EVENTS)  # libzmq reads its commands (term's "stop") here
        except lib.ContextTerminated:
            return
        time.sleep(0.005)  # term() runs in another thread; nothing to wait on but its effect
    raise AssertionError("term() did not begin")


@LIBS
@pytest.mark.parametrize("timeout_ms", [0, 50])
def test_poll_after_term_began_raises_context_terminated(lib: Any, timeout_ms: int) -> None:
    ctx = lib.Context()
    sock = ctx.socket(lib.PULL)
    sock.setsockopt(lib.LINGER, 0)
    sock.bind("inproc://term-poll")
    terminator = threading.Thread(target=ctx.term, daemon=True)
    terminator.start()
    _wait_for_term_to_begin(sock, lib)
    with pytest.raises(lib.ContextTerminated):
        sock.poll(timeout_ms)
    sock.close()
    terminator.join(WAIT_MS / 1000)
    assert not terminator.is_alive()
