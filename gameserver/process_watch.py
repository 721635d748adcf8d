"""Waiting for another process to end without waking up to check on it.

A worker stops when the ``crossroads serve`` that started it is gone, and ``serve`` replaces a
worker that died. Checking every so often costs an idle process a wake-up each time (a few
hundred microseconds of CPU here: see the idle figures in loadtest/JOURNAL.md); a pidfd
(Linux 5.3 and later) becomes readable when its process ends, so the loop sleeps until then.
Where there is none, the check runs every ``FALLBACK_CHECK_S``.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Callable

#: How often ``alive()`` is asked where pidfds are missing (other systems, old kernels).
FALLBACK_CHECK_S = 1.0


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here, or the process is already gone
        return None


def wait_process_ended(
    pid: int, alive: Callable[[], bool], fallback_every: float = FALLBACK_CHECK_S
) -> None:
    """:func:`process_ended` for a thread that may block until then."""
    pidfd = _open_pidfd(pid)
    if pidfd is not None:
        try:
            if alive():
                select.select([pidfd], [], [])
        finally:
            os.close(pidfd)
    while alive():
        time.sleep(fallback_every)


async def process_ended(
    pid: int, alive: Callable[[], bool], fallback_every: float = FALLBACK_CHECK_S
) -> None:
    """Return once process ``pid`` has ended, as ``alive()`` (a cheap check) then confirms.

    ``alive()`` is asked after the pidfd is open: a process that ended before (its pid free
    for another) is seen gone there, and a pidfd is never opened on a stranger for long."""
    pidfd = _open_pidfd(pid)
    if pidfd is None:
        while alive():
            await asyncio.sleep(fallback_every)
        return
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    loop.add_reader(pidfd, lambda: ended.done() or ended.set_result(None))
    try:
        if alive():
            await ended
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
