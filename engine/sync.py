"""The sync face: pyzmq's blocking Context and Socket; here only how a blocking call waits.

Sockets live on an I/O thread's loop (background I/O, as libzmq); the user's thread calls the
core's non-blocking operations directly and, only when one would block, sleeps on the socket's
eventfd until the I/O thread signals a change. A burst of messages costs one such wake-up.
"""

from __future__ import annotations

import atexit
import os
import select
import threading
import time
import weakref
from collections.abc import Callable, MutableSet
from typing import Any, Protocol

from . import constants as c
from .errors import ContextTerminated
from .face import SocketFace
from .face_context import ContextFace
from .face_frame import DONE_TRACKER, MessageTracker
from .iothread import IOThread, Signal
from .transport import Endpoints
from .waiting import Steps

#: At interpreter exit, sockets left open get at most this long to flush, so exit never hangs.
EXIT_LINGER_MS = 1000
#: A recv that finds its connection's pipe at RCVHWM (other consumers' messages pending) looks
#: again this often, rather than wait for the connection (which would spin) or forever.
RCVHWM_RECHECK_S = 0.001
#: How often term() looks at whether lingering connections have finished.
TERM_POLL_S = 0.005

__all__ = ["Context", "MessageTracker", "Socket"]


class Sleeper(Protocol):
    def wait(self, timeout: float | None) -> Any:
        """Block (cooperatively under gevent) until woken or `timeout` seconds have passed."""


def run_blocking(steps: Steps, waiter: Sleeper) -> Any:
    """Run the steps of a blocking call (engine.waiting) on this thread."""
    wait = waiter.wait
    try:
        while True:
            wait(next(steps))
    except StopIteration as done:
        return done.value


class ThreadWaiter:
    """One thread's wait on a thread-safe socket (the draft types): its own eventfd, woken with
    every other thread waiting there, so no thread's clear() can swallow another's wake-up."""

    __slots__ = ("signal", "sleepers")

    def __init__(self, sleepers: set[Signal]) -> None:
        self.signal = _thread_signal()
        self.sleepers = sleepers

    def prepare(self) -> None:
        self.sleepers.add(self.signal)
        self.signal.clear()

    def wait(self, timeout: float | None) -> bool:
        return self.signal.wait(timeout)

    def done(self) -> None:
        self.sleepers.discard(self.signal)


class ReadingWaiter:
    """A recv's wait on a socket whose one peer is a raw tcp/ipc connection: the blocked
    thread reads and decodes the connection itself, so a message costs no hand-off from the
    I/O thread. The I/O thread leaves the socket alone meanwhile (RawTransport.user_reading);
    its own deliveries, and every other change, still wake the thread through the eventfd."""

    __slots__ = ("_poller", "link", "signal", "transport")

    def __init__(self, signal: Signal, link: Any, transport: Any) -> None:
        self.signal = signal
        self.link = link
        self.transport = transport
        self._poller: Any = None

    def prepare(self) -> None:
        signal = self.signal
        if signal.pending:  # (Signal.clear's own test, without the call when there is none)
            signal.clear()

    def wait(self, timeout: float | None) -> bool:
        transport = self.transport
        if not transport.user_read_begin():
            return self.signal.wait(timeout)
        try:
            link = self.link
            if link.input_ready():  # what an earlier read left decoded-ready comes first
                got = link.read_now()
                if got is None:  # at RCVHWM: only the socket's consumers make room
                    wait = RCVHWM_RECHECK_S if timeout is None else min(timeout, RCVHWM_RECHECK_S)
                    return self.signal.wait(wait)
                if got:
                    return True
            # Bytes already in the socket make this poll return at once.
            poller = self._poller
            if poller is None:
                # Looked up now, so that a gevent patch makes the wait cooperative.
                poller = self._poller = select.poll()
                poller.register(self.signal.fd, select.POLLIN)
                poller.register(transport.fd, select.POLLIN)
            ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
            ready = poller.poll(ms)
            for fd, _ in ready:
                if fd == transport.fd:
                    link.read_now()
                else:
                    self.signal.seen()
            return bool(ready)
        finally:
            transport.user_read_end()


class _OwnSignal:
    """A thread's eventfd, closed when the thread (and so its thread-local) goes away."""

    __slots__ = ("signal",)

    def __init__(self) -> None:
        self.signal = Signal()

    def __del__(self) -> None:
        self.signal.close()


_local = threading.local()


def _thread_signal() -> Signal:
    """This thread's (or greenlet's) eventfd for waiting on thread-safe sockets."""
    own = getattr(_local, "own", None)
    if own is None:
        own = _local.own = _OwnSignal()
    return own.signal


class Socket(SocketFace):
    """A blocking socket, driven from one thread at a time, except the draft types, which any
    thread may use at any time (libzmq's thread-safe sockets)."""

    _face_name = "engine.Socket"

    def __init__(self, context: Context, socket_type: int, **options: Any) -> None:
        io = context._io_thread()
        super().__init__(context, socket_type, io.loop, same_thread=False)
        object.__setattr__(self, "_io_thread", io)
        object.__setattr__(self, "_signal", Signal())
        #: Threads blocked on a thread-safe socket, each on its own eventfd.
        object.__setattr__(self, "_sleepers", set())
        #: The last ReadingWaiter, kept while its connection lives (it holds a poll object).
        object.__setattr__(self, "_reading_waiter", None)
        self._start(options)

    # -- the common case first ---------------------------------------------------------------------

    def send(
        self,
        data: Any,
        flags: int = 0,
        copy: bool = True,
        track: bool = False,
        routing_id: int | None = None,
        group: str | bytes | None = None,
    ) -> Any:
        # One whole bytes frame that the socket takes at once: straight to the core. Anything
        # else (parts, flags, a full queue, draft sockets) takes the general path.
        if type(data) is bytes and not flags and not self._send_parts:
            core = self._core
            pipe = core.direct_out
            if pipe is not None and not core._commands:
                # A plain one-pipe send (PUSH, DEALER, PAIR with one peer): the offer itself.
                if pipe.offer([data]):
                    return DONE_TRACKER if track and not copy else None
            elif not (core.closed or core.thread_safe) and core.send([data]):
                return DONE_TRACKER if track and not copy else None
        return SocketFace.send(self, data, flags, copy, track, routing_id, group)

    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        # Taken as bytes: a message waiting now needs no wait machinery and no Frame, and one
        # not there yet goes straight to the wait (the general path would look again first).
        core = self._core
        inbox = core.direct
        # (`direct` is None while a command from the loop, a message events() took, or the
        # frames of a multipart message in _recv_rest wait.)
        if inbox is not None and copy:
            # A plain fair-queue (PULL, SUB taking every topic): a one-frame message of the
            # batch being read is this socket's recv() without the call.
            pos = inbox.pos
            try:  # (cheaper than a length check: only the end of each batch raises)
                msg = inbox.batch[pos]
            except IndexError:
                # The next batch, if one waits (an inproc peer delivers one per send).
                msg = inbox.take() if inbox.incoming else None
                if msg is not None:
                    if len(msg) > 1:
                        self._keep_rest(msg[1:], self._source())
                    return msg[0]
            else:
                if type(msg) is bytes:  # delivered bare (see FairQueue)
                    inbox.pos = pos + 1
                    return msg
                if len(msg) == 1:
                    inbox.pos = pos + 1
                    return msg[0]
        if copy and not self._recv_rest and not (core.closed or core.thread_safe):
            if (
                flags  # DONTWAIT: this look is the only one
                or core.inbox.waiting()
                or core._commands
                or core._prefetched is not None
            ):
                msg = core.recv()
            else:
                # Nothing delivered yet (a reply on its way): the wait's first attempt, made
                # once armed, is the look. (XPUB's own queue is looked at there too.)
                msg = None
            if msg is None:
                msg = self._recv_wait(flags)
            if len(msg) > 1:
                self._keep_rest(msg[1:], self._source())
            return msg[0]
        return SocketFace.recv(self, flags, copy, track)

    # -- how to wait ----------------------------------------------------------------------------

    def _core_waker(self) -> Callable[[], None]:
        """The core holds this socket weakly: a strong hold (the I/O loop holds the core
        while it has connections) kept a socket the application had dropped alive, open and
        connected for ever, where pyzmq's is closed when collected (a SUB let go went on
        taking its topics, and its XPUB never heard it unsubscribe)."""
        ref = weakref.ref(self)

        def wake() -> None:
            alive = ref()
            if alive is not None:
                alive._wake()

        return wake

    def _wake(self) -> None:
        self._signal.set()  # for a Poller, or the FD, waiting on this socket
        if self._sleepers:
            for signal in list(self._sleepers):
                signal.set()

    def _waiter(self, reading: bool = False) -> Signal | ThreadWaiter | ReadingWaiter:
        core = self._core
        if core.thread_safe:
            return ThreadWaiter(self._sleepers)
        if reading and len(core.pipes) == 1:
            link = core.pipes[0].link
            user_reader = getattr(link, "user_reader", None)
            transport = user_reader() if user_reader is not None else None
            if transport is not None:
                waiter = self._reading_waiter
                if waiter is None or waiter.transport is not transport:
                    waiter = ReadingWaiter(self._signal, link, transport)
                    object.__setattr__(self, "_reading_waiter", waiter)
                return waiter
        return self._signal

    def _run(self, steps: Steps, waiter: Signal | ThreadWaiter) -> Any:
        try:
            return run_blocking(steps, waiter)
        finally:
            if type(waiter) is ThreadWaiter:
                waiter.done()

    def _done(self, value: Any) -> Any:
        return value

    def _then(self, result: Any, fn: Callable[[Any], Any]) -> Any:
        return fn(result)

    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._io_thread.call(fn, *args)

    def _fd(self) -> int:
        # pyzmq's FD: readable when the socket's state may have changed; then read EVENTS.
        fd = self._signal.handed_out()
        self._core.arm()
        return fd

    def __del__(self) -> None:
        try:
            if not self._core.closed and not self.context._io.terminated:
                self.close()
            self._signal.close()
        except Exception:
            pass  # interpreter shutdown, or a half-built socket


class Context(ContextFace):
    """Owns the I/O threads; sockets of one context can talk over inproc:// across threads."""

    _socket_class = Socket

    def __init__(self, io_threads: int = 1, **kwargs: Any) -> None:
        super().__init__(io_threads, **kwargs)
        # Made as sockets need them, up to IO_THREADS, as libzmq starts its threads with the
        # first socket: each holds a selector, and a large IO_THREADS made them all at once.
        object.__setattr__(self, "_threads", [])
        object.__setattr__(self, "_next", 0)
        object.__setattr__(self, "_pool_size", 1)  # IO_THREADS when the first socket came
        #: Closed sockets' transport sides whose connections still linger; term() waits.
        object.__setattr__(self, "_lingering", set())
        #: When term() stops waiting for lingering connections (monotonic time; None: never),
        #: set at interpreter exit only.
        object.__setattr__(self, "_linger_deadline", None)
        contexts_at_exit.add(self)

    @staticmethod
    def _socket_set() -> MutableSet[Any]:
        return weakref.WeakSet()  # an unreferenced socket is collected (and closed) as in pyzmq

    def _io_thread(self) -> IOThread:
        """The I/O thread for the next socket, round robin."""
        if self._io.terminated:
            raise ContextTerminated()
        index = self._next % self._pool_size
        object.__setattr__(self, "_next", self._next + 1)
        threads = self._threads
        if index == len(threads):  # round robin: the next one not made yet
            threads.append(IOThread(f"engine-io-{index}"))
        io = threads[index]
        io.start()
        return io

    def _start_context(self) -> None:
        super()._start_context()
        object.__setattr__(self, "_pool_size", max(1, self.get(c.IO_THREADS)))

    def _forget(self, sock: Any) -> None:
        super()._forget(sock)
        endpoints = sock._endpoints
        if endpoints.links:
            self._lingering.add(endpoints)

    def _after_close(self) -> None:
        # Lingering connections finish on the loops; then the threads stop.
        deadline = self._linger_deadline
        for io in self._threads:
            if not io._started:
                continue
            while io.call(_has_links, self._lingering, io):
                if deadline is not None and time.monotonic() >= deadline:
                    io.call(_abort_links, self._lingering, io)
                    break
                time.sleep(TERM_POLL_S)
        for io in self._threads:
            io.stop()
        contexts_at_exit.discard(self)


def _has_links(lingering: set[Endpoints], io: IOThread) -> bool:
    """Runs on `io`'s loop: is a closed socket's connection there still open (lingering)?"""
    for endpoints in list(lingering):
        if endpoints.loop is io.loop:
            if endpoints.links:
                return True
            lingering.discard(endpoints)
    return False


def _abort_links(lingering: set[Endpoints], io: IOThread) -> None:
    """Runs on `io`'s loop: closes the lingering connections there at once."""
    for endpoints in list(lingering):
        if endpoints.loop is io.loop:
            for link in list(endpoints.links):
                link.abort()
            lingering.discard(endpoints)


#: The contexts that end (their sockets flushed, EXIT_LINGER_MS at most) at interpreter exit.
contexts_at_exit: weakref.WeakSet[Context] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The parent's I/O threads do not exist in the child: forget its contexts.
    Context._instance = None
    contexts_at_exit.clear()


def _at_exit() -> None:
    for ctx in list(contexts_at_exit):
        if ctx._pid == os.getpid():
            # Sockets closed before (by the application, or collected unreferenced) may
            # linger without limit; leaving waits for them no longer than for the open ones.
            object.__setattr__(ctx, "_linger_deadline", time.monotonic() + EXIT_LINGER_MS / 1000)
            try:
                ctx._shutdown(None, max_linger_ms=EXIT_LINGER_MS)
            except Exception:
                pass


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
