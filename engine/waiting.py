"""The one wait algorithm: how a call that would block waits, for both faces and both Pollers.

A blocking call is a sequence of steps, written once here as a generator: make the waiter ready,
arm the sockets (ask for one wake-up at their next change), re-check, and only then sleep. The
generator yields how long to sleep (None: until woken) and returns the call's result; a face
drives it with its own way of sleeping (an eventfd on the sync face, a future on asyncio). Being
armed before the re-check means no change can slip between the check and the sleep; disarming
after a successful re-check means no wake-up is paid for when nobody sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from time import monotonic
from typing import Any, Protocol

from .sockets import SocketCore

#: What an attempt returns when the operation would block.
NOTHING: Any = object()

#: The steps of one blocking call: yields seconds to sleep (None: no limit), returns the result.
Steps = Generator[float | None, None, Any]


class Waiter(Protocol):
    """A face's way to sleep until a socket changes."""

    def prepare(self) -> None:
        """Ready to be woken from now on (clear the eventfd, make a fresh future...)."""


def wait_steps(
    cores: Sequence[SocketCore],
    attempt: Callable[[], Any],
    timeout_ms: int,
    waiter: Waiter,
    check_open: Callable[[], None],
    on_timeout: Callable[[], Any],
    nothing: Any = NOTHING,
) -> Steps:
    """Retry `attempt` at each change of `cores` until it returns something else than `nothing`
    (NOTHING; None for an attempt that is a socket's own recv, which spares a wrapper call).

    `timeout_ms` < 0 waits without limit; when it runs out, the result is `on_timeout()` (which
    may raise Again instead). Before every sleep and after it, `check_open` raises if a socket
    was closed meanwhile (ENOTSOCK) or its context terminated (ETERM), as libzmq's blocked
    calls do.
    """
    deadline = None if timeout_ms < 0 else monotonic() + timeout_ms / 1000
    while True:
        waiter.prepare()
        for core in cores:
            core.arm()
        result = attempt()  # re-check after arming, or a wake-up could slip past
        if result is not nothing:
            _disarm(cores)
            return result
        # Closed since the last look? A close wakes whoever sleeps, but a close that came
        # after that look and before prepare() above had its wake-up cleared there, and the
        # attempt does not look at it: the call would sleep for good. (Seen once in CI: a
        # thread blocked in recv that destroy() never woke, 1 of 20 tries in a loaded run.)
        check_open()
        remaining = None
        if deadline is not None:
            remaining = deadline - monotonic()
            if remaining <= 0:
                _disarm(cores)
                return on_timeout()
        yield remaining
        check_open()


def timeout_ms(timeout: float | None) -> int:
    """A pyzmq timeout in milliseconds (None or negative: no limit) as wait_steps takes it."""
    return -1 if timeout is None or timeout < 0 else int(timeout)


def _disarm(cores: Sequence[SocketCore]) -> None:
    for core in cores:
        core.disarm()
