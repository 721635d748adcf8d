"""The asyncio face, mirroring zmq.asyncio; here only how a blocking call waits.

A socket made inside a running loop has its core and connections on that loop, so a message
goes from the kernel to the awaiting task with no thread hop. One made outside any running loop
(at a module's top, before `asyncio.run`) cannot know the loop that will use it, so it lives on
its context's I/O thread, as the sync face's sockets do and as a pyzmq socket's I/O lives on
libzmq's thread, and serves whichever loop awaits it: the thread sets the socket's eventfd at
each change and a reader on the awaiting loop wakes the futures waiting there (`SignalBridge`).

A call that can complete at once returns a finished future; one that must wait returns a task
that sleeps on a future per socket change. A cancelled recv has taken nothing, and a multipart
send is queued whole or not at all, so cancellation never loses or splits a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import constants as c
from .errors import Again, LoopGone, ZMQError
from .face import SocketFace
from .face_context import ContextFace
from .face_frame import Frame, as_frame
from .iothread import Signal
from .polling import PollerFace, fileno
from .sync import Context as ThreadedContext
from .sync import contexts_at_exit
from .waiting import Steps

if TYPE_CHECKING:
    from .iothread import IOThread

__all__ = ["Context", "Frame", "Poller", "Socket"]

#: Most messages one turn of on_recv's delivery hands out before the loop runs something else
#: (the rest go on at its next pass): a flood on one socket cannot starve the others. A link's
#: read delivers at most a read buffer's worth, so a turn usually ends long before this.
DELIVER_BATCH = 256


def _loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop_policy().get_event_loop()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class SignalBridge:
    """How a socket on an I/O thread wakes the futures waiting on it in the loop that awaits
    it now: a reader on its eventfd, added to that loop while someone waits there."""

    __slots__ = ("loop", "signal", "waiters")

    def __init__(self, signal: Signal, waiters: list[asyncio.Future]) -> None:
        self.signal = signal
        self.waiters = waiters
        self.loop: asyncio.AbstractEventLoop | None = None

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Someone waits on `loop`: its next pass with the eventfd readable wakes them."""
        if self.loop is loop:
            return
        self.unwatch()
        if self.signal.fd >= 0:  # (closed with its socket)
            loop.add_reader(self.signal.fd, self._fire)
            self.loop = loop

    def unwatch(self) -> None:
        loop = self.loop
        if loop is not None:
            self.loop = None
            if not loop.is_closed():
                loop.remove_reader(self.signal.fd)

    def _fire(self) -> None:
        signal = self.signal
        signal.seen()
        signal.clear()
        waiters = self.waiters
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        waiters.clear()
        # Until the next wait: the loop may end before then, and another may take over.
        self.unwatch()


class FutureWaiter:
    """engine.waiting's Waiter for asyncio: a fresh future per wait, registered with each
    socket that may wake it (one for a socket's own call, several for a Poller); the
    sockets on an I/O thread among them are watched from this loop meanwhile."""

    __slots__ = ("_bridges", "_lists", "_loop", "fut")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        lists: list[list[asyncio.Future]],
        bridges: Sequence[SignalBridge] = (),
    ) -> None:
        self._loop = loop
        self._lists = lists
        self._bridges = bridges
        self.fut: asyncio.Future[None] | None = None

    def prepare(self) -> None:
        self.discard()
        fut = self.fut = self._loop.create_future()
        for waiters in self._lists:
            waiters.append(fut)
        for bridge in self._bridges:
            bridge.watch(self._loop)

    def discard(self) -> None:
        fut = self.fut
        if fut is not None:
            for waiters in self._lists:
                if fut in waiters:  # a wake-up may already have emptied the list
                    waiters.remove(fut)

    async def sleep(self, timeout: float | None) -> None:
        fut = self.fut
        assert fut is not None
        if timeout is None:
            await fut
            return
        timer = self._loop.call_later(timeout, _expire, fut)
        try:
            await fut
        finally:
            timer.cancel()


class _Then(asyncio.Future):  # type: ignore[type-arg]
    """A Future of a value still to be made from `source`'s. Cancelling it cancels `source`,
    unless `source` is done already: then its value (a message taken off the socket) is on
    its way here, and a cancel now would lose it, so the cancel is refused, as a Task that
    has finished refuses one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, source: asyncio.Future[Any]) -> None:
        super().__init__(loop=loop)
        self._source = source

    def cancel(self, msg: Any = None) -> bool:
        source = self._source
        if source.done() and not source.cancelled():
            return False
        source.cancel()
        return super().cancel(msg)


def then(
    loop: asyncio.AbstractEventLoop, result: asyncio.Future[Any], fn: Callable[[Any], Any]
) -> asyncio.Future[Any]:
    """A Future of `fn(result's value)`, settled as soon as `result` is (at once if it is
    already done)."""
    fut: asyncio.Future[Any] = loop.create_future() if result.done() else _Then(loop, result)

    def settle(done: asyncio.Future[Any]) -> None:
        if fut.done():
            return
        if done.cancelled():
            fut.cancel()
            return
        error = done.exception()
        if error is not None:
            fut.set_exception(error)
            return
        try:
            fut.set_result(fn(done.result()))
        except Exception as exc:  # a decoding error, say: the caller's await raises it
            fut.set_exception(exc)

    if result.done():
        settle(result)
    else:
        result.add_done_callback(settle)
    return fut


async def drive(steps: Steps, waiter: FutureWaiter, before_sleep: Callable[[], None]) -> Any:
    """Run the steps of a blocking call (engine.waiting) on this loop."""
    try:
        while True:
            timeout = next(steps)
            before_sleep()
            await waiter.sleep(timeout)
    except StopIteration as done:
        return done.value
    finally:
        waiter.discard()


def _errors_through_the_future(method: Callable[..., Any]) -> Callable[..., Any]:
    """As in zmq.asyncio, what a call fails with (Again under DONTWAIT, ENOTSOCK, EFSM...)
    comes out of its awaitable, not out of the call that made it."""

    def call(self: Socket, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            fut = (self._loop or _loop()).create_future()
            fut.set_exception(exc)
            return fut

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


class Socket(SocketFace):
    """An engine socket driven from asyncio; every blocking call returns an awaitable."""

    send = _errors_through_the_future(SocketFace.send)
    send_multipart = _errors_through_the_future(SocketFace.send_multipart)
    recv = _errors_through_the_future(SocketFace.recv)
    recv_multipart = _errors_through_the_future(SocketFace.recv_multipart)
    poll = _errors_through_the_future(SocketFace.poll)
    recv_into = _errors_through_the_future(SocketFace.recv_into)

    _face_name = "engine.asyncio.Socket"

    def __init__(self, context: Context, socket_type: int, **options: Any) -> None:
        #: The loop the socket lives on; None: it lives on an I/O thread (made outside any
        #: running loop) and serves the loop that runs each call.
        loop = _running_loop()
        waiters: list[asyncio.Future] = []
        if loop is not None:
            super().__init__(context, socket_type, loop, same_thread=True)
            io_thread, bridge = None, None
        else:
            io_thread = context._io_thread()
            super().__init__(context, socket_type, io_thread.loop, same_thread=False)
            bridge = SignalBridge(Signal(), waiters)
        object.__setattr__(self, "_loop", loop)
        object.__setattr__(self, "_io_thread", io_thread)
        object.__setattr__(self, "_bridge", bridge)
        object.__setattr__(self, "_waiters", waiters)
        object.__setattr__(self, "_on_recv", None)
        object.__setattr__(self, "_batched", False)
        object.__setattr__(self, "_on_recv_failed", None)
        object.__setattr__(self, "_delivering", False)
        #: The calls waiting now (tasks of _run), which close() cancels.
        object.__setattr__(self, "_waiting_calls", set())
        self._start(options)

    # -- messages handed to a callback ------------------------------------------------------------

    def on_recv(
        self,
        callback: Callable[[list[bytes]], None] | None,
        failed: asyncio.Future[None] | None = None,
    ) -> None:
        """Hand each message (its frames, as recv_multipart gives them) to ``callback`` as it
        arrives, instead of keeping it for recv: an engine extension, in the spirit of pyzmq's
        ZMQStream.on_recv. The callback runs in the loop pass that read the message, so a
        server that answers at once spends one pass per read where an awaiting task spends
        two (its wake-up is a pass of its own), and makes no future per message.

        The callback must not block (send with DONTWAIT, or send_multipart_now). What it
        raises goes to ``failed`` (the first exception: a server whose run should end with its
        handler's bug awaits that future), else to the loop's exception handler; the next
        message is handed on either way. Do not mix it with recv on the same socket. ``None``
        stops it: messages wait for recv again."""
        self._set_on_recv(callback, False, failed)

    def on_recv_batch(
        self,
        callback: Callable[[list[list[bytes]]], None] | None,
        failed: asyncio.Future[None] | None = None,
    ) -> None:
        """on_recv for code that handles messages together (one store transaction for all of
        them, say): ``callback`` gets a list of every message waiting, up to DELIVER_BATCH,
        usually what one read of one connection brought."""
        self._set_on_recv(callback, True, failed)

    def _set_on_recv(
        self,
        callback: Callable[[Any], None] | None,
        batched: bool,
        failed: asyncio.Future[None] | None,
    ) -> None:
        core = self._core
        if core.thread_safe:
            raise ZMQError(c.ENOTSUP, "on_recv takes whole messages: not for the draft types")
        if self._loop is None:
            raise ZMQError(
                c.ENOTSUP, "on_recv is for a socket made inside its running loop (it runs there)"
            )
        if callback is not None and core.closed:
            self._check_open()  # ENOTSOCK, as any other call on a closed socket
        object.__setattr__(self, "_on_recv", callback)
        object.__setattr__(self, "_batched", batched)
        object.__setattr__(self, "_on_recv_failed", failed)
        core.wake_on_delivery = callback is not None
        if callback is not None:
            self._loop.call_soon(self._deliver)  # what came before the callback was set

    def send_multipart_now(self, msg_parts: Sequence[bytes]) -> None:
        """Queue a whole message now or raise (Again at the high-water mark, EHOSTUNREACH from
        a mandatory ROUTER...): send_multipart with DONTWAIT, without an awaitable, for code
        that runs on the loop and cannot wait anyway, such as an on_recv callback."""
        core = self._core
        if core.closed or core.thread_safe or self._send_parts:
            SocketFace.send_multipart(self, msg_parts, c.DONTWAIT).result()
            return
        msg = [as_frame(p) for p in msg_parts]
        if not msg:
            raise ZMQError(c.EINVAL, "cannot send an empty multipart message")
        if not core.send(msg):
            raise Again()

    def _deliver(self) -> None:
        """Hand what waits to the on_recv callback, DELIVER_BATCH messages a turn at most."""
        if self._delivering:
            return  # a delivery while the callback runs: the turn under way takes it
        core = self._core
        object.__setattr__(self, "_delivering", True)
        try:
            handed = 0
            while handed < DELIVER_BATCH:
                callback = self._on_recv
                if callback is None or core.closed:
                    return
                if self._batched:
                    taken: Any = []
                    while handed < DELIVER_BATCH and (msg := core.recv()) is not None:
                        taken.append(msg)
                        handed += 1
                else:
                    taken = core.recv()
                    handed += 1
                if not taken:
                    return
                try:
                    callback(taken)
                except Exception as exc:
                    failed = self._on_recv_failed
                    if failed is None:
                        self._loop.call_exception_handler(
                            {
                                "message": "an on_recv callback failed",
                                "exception": exc,
                                "socket": self,
                            }
                        )
                    elif not failed.done():
                        failed.set_exception(exc)
            self._loop.call_soon(self._deliver)
        finally:
            object.__setattr__(self, "_delivering", False)

    # -- how to wait ----------------------------------------------------------------------------

    def _wake(self) -> None:
        bridge = self._bridge
        if bridge is not None:  # on the I/O thread: through the eventfd
            bridge.signal.set()
            return
        waiters = self._waiters
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        waiters.clear()
        if self._on_recv is not None:
            self._deliver()

    def _waiter(self, reading: bool = False) -> FutureWaiter:
        loop = self._loop
        if loop is None:
            return FutureWaiter(_loop(), [self._waiters], (self._bridge,))
        return FutureWaiter(loop, [self._waiters])

    def _run(self, steps: Steps, waiter: FutureWaiter) -> Any:
        # About to sleep: write what this task queued now rather than on the next loop pass
        # (on an I/O thread, the thread writes it). A task, so the caller holds a Future as
        # pyzmq's callers do (cancel(), asyncio.wait); made only on this path, when the call
        # has to wait anyway.
        loop = self._loop
        if loop is None:
            task = _loop().create_task(drive(steps, waiter, _nothing))
        else:
            task = loop.create_task(drive(steps, waiter, self._core.flush))
        calls = self._waiting_calls
        calls.add(task)
        task.add_done_callback(calls.discard)
        return task

    def close(self, linger: int | None = None) -> None:
        """Close, as SocketFace.close, and cancel the calls still waiting on this socket, as
        zmq.asyncio does (the engine failed them with ENOTSOCK, so code that stops its
        receiving task by closing the socket met an error where pyzmq's meets a cancel)."""
        waiting = list(self._waiting_calls)
        super().close(linger)
        for task in waiting:
            task.cancel()
        bridge = self._bridge
        if bridge is not None:
            bridge.unwatch()
            bridge.signal.close()  # (a set() from the thread after this finds it closed)

    def _done(self, value: Any) -> asyncio.Future[Any]:
        fut = (self._loop or _loop()).create_future()
        fut.set_result(value)
        return fut

    def _then(self, result: asyncio.Future[Any], fn: Callable[[Any], Any]) -> asyncio.Future[Any]:
        return then(self._loop or _loop(), result, fn)

    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        io_thread = self._io_thread
        if io_thread is None:
            if self._loop.is_closed():
                # asyncio.run() has returned, say, and the context is destroyed after it:
                # the socket's connections ended with their loop, and its close() is quiet.
                raise LoopGone()
            return fn(*args)  # the core lives on this very loop
        return io_thread.call(fn, *args)

    def _fd(self) -> int:
        # pyzmq's FD, for a socket on an I/O thread (as the sync face's): readable when its
        # state may have changed. One on the caller's loop has none (EINVAL).
        bridge = self._bridge
        if bridge is None:
            return super()._fd()
        fd = bridge.signal.handed_out()
        self._core.arm()
        return fd

    async def __aenter__(self) -> Socket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Context(ThreadedContext):
    """Creates asyncio sockets; sockets of one context can talk over inproc://. Its I/O
    threads start only for sockets made outside a running loop (as pyzmq's asyncio Context,
    a subclass of its Context)."""

    _socket_class = Socket
    _instance = None  # not the sync face's
    _instance_pid = -1

    def __init__(self, io_threads: int = 1, **kwargs: Any) -> None:
        super().__init__(io_threads, **kwargs)
        # Ended at interpreter exit only once it has an I/O thread: sockets on the loops
        # the application ran are that application's to close.
        contexts_at_exit.discard(self)

    @staticmethod
    def _socket_set() -> set[Any]:
        return set()  # a socket is kept until closed, as its loop's reader keeps pyzmq's

    def _io_thread(self) -> IOThread:
        contexts_at_exit.add(self)
        return super()._io_thread()

    def _forget(self, sock: Any) -> None:
        if sock._io_thread is not None:
            super()._forget(sock)  # its lingering connections are term()'s to wait for
        else:
            ContextFace._forget(self, sock)  # a loop's: they linger on that loop

    async def __aenter__(self) -> Context:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.destroy()


class FdFutureWaiter(FutureWaiter):
    """What an asyncio Poller sleeps on: a future its sockets resolve, or its raw fds do."""

    __slots__ = ("_raw", "_signals")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        lists: list[list[asyncio.Future]],
        raw: list[tuple[Any, int]],
        signals: list[Signal] | None = None,
        bridges: Sequence[SignalBridge] = (),
    ) -> None:
        super().__init__(loop, lists, bridges)
        self._raw = [(fileno(item), flags) for item, flags in raw]
        #: The eventfds of blocking (sync) sockets registered here too, as pyzmq's asyncio
        #: Poller takes them: their I/O thread sets them when their state may have changed.
        self._signals = signals or []

    def prepare(self) -> None:
        super().prepare()
        loop, fut = self._loop, self.fut
        for fd, flags in self._raw:
            if flags & c.POLLIN:
                loop.add_reader(fd, _expire, fut)
            if flags & c.POLLOUT:
                loop.add_writer(fd, _expire, fut)
        for signal in self._signals:
            signal.seen()  # the loop does not say whether it woke for it: read it in any case
            signal.clear()
            loop.add_reader(signal.fd, _expire, fut)

    def discard(self) -> None:
        super().discard()
        loop = self._loop
        for fd, flags in self._raw:
            if flags & c.POLLIN:
                loop.remove_reader(fd)
            if flags & c.POLLOUT:
                loop.remove_writer(fd)
        for signal in self._signals:
            loop.remove_reader(signal.fd)


class Poller(PollerFace):
    """Waits for readiness on several asyncio sockets (and raw file descriptors) at once."""

    def _waiter(self, sockets: list[Any], raw: list[tuple[Any, int]]) -> FdFutureWaiter:
        own = [s._waiters for s in sockets if isinstance(s, Socket)]
        bridges = [s._bridge for s in sockets if isinstance(s, Socket) and s._bridge is not None]
        blocking = [s._signal for s in sockets if not isinstance(s, Socket)]
        return FdFutureWaiter(_loop(), own, raw, blocking, bridges)

    def _run(self, steps: Steps, waiter: FdFutureWaiter) -> Any:
        return _loop().create_task(drive(steps, waiter, _nothing))

    def _done(self, value: Any) -> asyncio.Future[Any]:
        fut = _loop().create_future()
        fut.set_result(value)
        return fut


def _nothing() -> None:
    pass
