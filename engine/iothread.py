"""Background I/O for the sync face: an asyncio loop on a real OS thread, and wake-up signals.

Under gevent's monkey-patching (as Locust runs), `threading.Thread` would make a greenlet and
the loop would then block the hub, so the I/O thread is started with the unpatched
`_thread.start_new_thread` and polls with the unpatched epoll. The user side waits on an eventfd
through `select.poll`, which gevent makes cooperative, so greenlets yield while they wait.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Callable
from typing import Any

from .errors import LoopGone
from .native import native_lock, native_selector, native_thread_id, start_native_thread


class Signal:
    """A file descriptor that becomes readable when `set()` is called from any thread."""

    __slots__ = ("_lock", "_poller", "fd", "pending")

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        # set() runs on other threads than close() (the I/O thread, say, answering a call whose
        # caller closes its signal as soon as it sees the answer). Without this lock close()
        # could free the number between set()'s look at `fd` and its write, and the write would
        # land on whatever took the number next: in a process that also runs libzmq, one of its
        # mailbox eventfds, and libzmq aborts on a signal with no command behind it.
        self._lock = native_lock()
        self._poller: Any = None
        #: set() may have happened since the last clear(). An empty eventfd costs a failed
        #: read and an exception to clear, on every blocked call; this flag skips that. A set()
        #: racing with a clear() can leave the fd readable with the flag down: then the next
        #: poll sees it readable and raises the flag (seen()), so the clear after reads it.
        self.pending = True

    def set(self) -> None:
        with self._lock:
            fd = self.fd
            if fd < 0:
                return  # closed: nobody is left to wake
            self.pending = True
            try:
                os.eventfd_write(fd, 1)
            except OSError:
                pass  # the counter is saturated: nobody is lost

    def clear(self) -> None:
        if not self.pending:
            return
        self.pending = False
        with self._lock:
            fd = self.fd
            if fd < 0:
                return
            try:
                os.eventfd_read(fd)
            except OSError:
                pass  # nothing to clear (EAGAIN)

    def seen(self) -> None:
        """A poll found the fd readable: the next clear() must read it."""
        self.pending = True

    def prepare(self) -> None:
        """engine.waiting's Waiter: cleared before arming, so a later set() is seen."""
        self.clear()

    def handed_out(self) -> int:
        """The fd, for a poll outside the engine (pyzmq's FD option): cleared now, since
        whoever polls it never tells us it fired; the caller arms its socket after this."""
        self.seen()
        self.clear()
        return self.fd

    def wait(self, timeout: float | None) -> bool:
        """Block (cooperatively under gevent) until set or `timeout` seconds; True if set."""
        poller = self._poller
        if poller is None:
            # Looked up on first use, so a later gevent patch still makes the wait cooperative.
            poller = self._poller = select.poll()
            poller.register(self.fd, select.POLLIN)
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        if poller.poll(ms):
            self.pending = True
            return True
        return False

    def close(self) -> None:
        with self._lock:  # after any set() or clear() under way: the number is still ours then
            fd = self.fd
            if fd >= 0:
                self.fd = -1
                os.close(fd)


class IOThreadStopped(LoopGone):
    """The I/O thread ended (its context was terminated) before the call could run."""


class IOThread:
    """One I/O thread and its event loop; sockets of the sync face live on one of these."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.SelectorEventLoop(native_selector())
        self._started = False
        self._exited = False
        self._thread_id = -1
        self._waiters: set[Signal] = set()
        self._lock = native_lock()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        ready = Signal()

        def run() -> None:
            self._thread_id = native_thread_id()
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            try:
                self.loop.run_forever()
            finally:
                self._exited = True
                self.loop.close()
                for waiter in list(self._waiters):
                    waiter.set()  # calls that will never run now: let their callers know

        start_native_thread(run)
        ready.wait(None)
        ready.close()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the loop and return its result (or raise its exception)."""
        if self._thread_id == native_thread_id():
            return fn(*args)  # already on the loop (a socket closed by the GC there, say)
        done = Signal()
        outcome: list[Any] = []

        def job() -> None:
            try:
                outcome.append((True, fn(*args)))
            except BaseException as exc:  # handed back to the caller's thread
                outcome.append((False, exc))
            done.set()

        self._waiters.add(done)
        try:
            if self._exited:
                raise IOThreadStopped()
            try:
                self.loop.call_soon_threadsafe(job)
            except RuntimeError:  # the loop closed under us (another thread terminated it)
                raise IOThreadStopped() from None
            while not outcome:
                if self._exited and not outcome:
                    raise IOThreadStopped()
                done.wait(None)
        finally:
            self._waiters.discard(done)
            done.close()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        """Cancel what still runs on the loop (reconnect tasks...), then stop it."""
        if not self._started or self.loop.is_closed():
            return
        loop = self.loop

        def shutdown() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.call_soon(loop.stop)  # after the cancelled tasks have run their last step

        try:
            loop.call_soon_threadsafe(shutdown)
        except RuntimeError:
            pass  # already closed
