"""The asyncio face, mirroring zmq.asyncio: `await sock.recv()` on the running loop.

The socket core and its connections live on the caller's own event loop, so a message goes from
the kernel to the awaiting task with no thread hop. Waiting is a future per blocked call, woken
once per delivered batch. A cancelled recv has taken nothing, and a multipart send is queued
whole or not at all, so cancellation never loses or splits a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from . import constants as c
from . import transport
from .context import IOContext
from .errors import Again, ZMQError
from .face import Frame, SocketFace, as_frame

__all__ = ["Context", "Frame", "Poller", "Socket"]

_NOTHING = object()


def _loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop_policy().get_event_loop()


class Socket(SocketFace):
    """An engine socket driven from asyncio; every blocking call is a coroutine."""

    _face_name = "engine.asyncio.Socket"

    def __init__(self, context: Context, socket_type: int) -> None:
        loop = _loop()
        core = context._io.create_socket(socket_type, loop, same_thread=True)
        super().__init__(core)
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "_loop", loop)
        object.__setattr__(self, "_waiters", [])
        core.set_waker(self._wake)

    # -- waiting ------------------------------------------------------------------------------

    def _wake(self) -> None:
        waiters = self._waiters
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        waiters.clear()

    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)  # the core lives on this very loop

    async def _until(self, attempt: Callable[[], Any], flags: int, timeout_ms: int) -> Any:
        """Retry a non-blocking attempt at each change until it succeeds or times out."""
        result = attempt()
        if result is not _NOTHING:
            return result
        if flags & c.DONTWAIT:
            raise Again()
        loop = self._loop
        deadline = None if timeout_ms < 0 else loop.time() + timeout_ms / 1000
        core = self._core
        waiters = self._waiters
        while True:
            fut = loop.create_future()
            waiters.append(fut)
            core.arm()
            result = attempt()  # re-check after arming, or a wake-up could slip past
            if result is not _NOTHING:
                _discard(waiters, fut)
                return result
            # About to sleep: write what this task queued now rather than on the next loop pass.
            core.flush_dirty()
            if deadline is None:
                await fut
            else:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    _discard(waiters, fut)
                    raise Again()
                timer = loop.call_later(remaining, _expire, fut)
                try:
                    await fut
                finally:
                    timer.cancel()
                    _discard(waiters, fut)
            if core.closed:
                raise ZMQError(c.ENOTSOCK, "socket closed while waiting")

    def _try_send(self, msg: list[bytes]) -> Callable[[], Any]:
        core = self._core

        def attempt() -> Any:
            self._check_open()
            return None if core.send(msg) else _NOTHING

        return attempt

    def _try_recv(self) -> Any:
        self._check_open()
        msg = self._core.recv()
        return _NOTHING if msg is None else msg

    # -- sending and receiving ------------------------------------------------------------------

    async def send(self, data: Any, flags: int = 0, copy: bool = True, track: bool = False) -> None:
        self._check_open()
        msg = self._gather(data, flags)
        if msg is not None:
            await self._send_whole(msg, flags)

    async def send_multipart(self, msg_parts: Sequence[Any], flags: int = 0, **kw: Any) -> None:
        self._check_open()
        msg = [as_frame(p) for p in msg_parts]
        if not msg:
            raise ZMQError(c.EINVAL, "cannot send an empty multipart message")
        if self._send_parts:  # parts given earlier with SNDMORE come first
            msg = self._send_parts + msg
            object.__setattr__(self, "_send_parts", [])
        await self._send_whole(msg, flags)

    async def _send_whole(self, msg: list[bytes], flags: int) -> None:
        if self._core.send(msg):
            return
        await self._until(self._try_send(msg), flags, self._core.options.sndtimeo)

    async def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        if self._recv_rest:
            return self._next_rest_frame(copy)
        msg = await self._recv_whole(flags)
        return self._first_frame(msg, copy)

    async def recv_multipart(self, flags: int = 0, copy: bool = True, track: bool = False) -> list:
        if self._recv_rest:
            rest = self._recv_rest
            object.__setattr__(self, "_recv_rest", [])
            return self._frames_out(rest, copy)
        return self._frames_out(await self._recv_whole(flags), copy)

    async def _recv_whole(self, flags: int) -> list[bytes]:
        self._check_open()
        msg = self._core.recv()
        if msg is not None:
            return msg
        return await self._until(self._try_recv, flags, self._core.options.rcvtimeo)

    async def _deserialize(self, result: Any, load: Callable[[Any], Any]) -> Any:
        return load(await result)

    async def poll(self, timeout: int | None = None, flags: int = c.POLLIN) -> int:
        """The events among `flags` that are ready, waiting up to `timeout` ms (None: forever)."""

        def attempt() -> Any:
            self._check_open()
            ready = self._events() & flags
            return ready if ready else _NOTHING

        try:
            return await self._until(attempt, 0, -1 if timeout is None else timeout)
        except Again:
            return 0

    # -- lifetime -------------------------------------------------------------------------------

    def close(self, linger: int | None = None) -> None:
        core = self._core
        if core.closed:
            return
        core.closed = True
        transport.shutdown(core, core.options.linger if linger is None else linger)
        self.context._io.forget(core)
        for fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    async def __aenter__(self) -> Socket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _discard(waiters: list, fut: asyncio.Future[None]) -> None:
    # A wake-up may already have emptied the list (a send can flush and notify inline).
    if fut in waiters:
        waiters.remove(fut)


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Context:
    """Creates asyncio sockets; sockets of one context can talk over inproc://."""

    _instance: Context | None = None

    def __init__(self, io_threads: int = 1) -> None:
        self._io = IOContext()
        self._sockets: list[Socket] = []

    @classmethod
    def instance(cls, io_threads: int = 1) -> Context:
        if cls._instance is None or cls._instance.closed:
            cls._instance = cls(io_threads)
        return cls._instance

    @property
    def closed(self) -> bool:
        return self._io.terminated

    def socket(self, socket_type: int, **options: Any) -> Socket:
        sock = Socket(self, socket_type)
        for name, value in options.items():
            setattr(sock, name, value)
        self._sockets.append(sock)
        return sock

    def destroy(self, linger: int | None = None) -> None:
        for sock in self._sockets:
            sock.close(linger)
        self._sockets.clear()
        self._io.terminated = True

    def term(self) -> None:
        self.destroy()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    async def __aenter__(self) -> Context:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.destroy()


class Poller:
    """Waits for readiness on several asyncio sockets (and raw file descriptors) at once."""

    def __init__(self) -> None:
        self.sockets: list[tuple[Any, int]] = []

    def register(self, socket: Any, flags: int = c.POLLIN | c.POLLOUT) -> None:
        self.unregister(socket, missing_ok=True)
        if flags:
            self.sockets.append((socket, flags))

    def modify(self, socket: Any, flags: int = c.POLLIN | c.POLLOUT) -> None:
        self.register(socket, flags)

    def unregister(self, socket: Any, missing_ok: bool = False) -> None:
        for i, (s, _) in enumerate(self.sockets):
            if s is socket:
                del self.sockets[i]
                return
        if not missing_ok:
            raise KeyError(socket)

    def _ready(self) -> list[tuple[Any, int]]:
        ready = []
        for sock, flags in self.sockets:
            if isinstance(sock, Socket):
                events = sock._events() & flags
                if events:
                    ready.append((sock, events))
        return ready

    async def poll(self, timeout: int | None = None) -> list[tuple[Any, int]]:
        ready = self._ready()
        if ready or timeout == 0:
            return ready
        loop = _loop()
        deadline = None if timeout is None or timeout < 0 else loop.time() + timeout / 1000
        while True:
            fut = loop.create_future()
            fd_ready: list[tuple[Any, int]] = []
            cleanup = self._arm(loop, fut, fd_ready)
            try:
                ready = self._ready()
                if ready:
                    return ready
                if deadline is None:
                    await fut
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return []
                    timer = loop.call_later(remaining, _expire, fut)
                    try:
                        await fut
                    finally:
                        timer.cancel()
            finally:
                cleanup()
            ready = self._ready() + fd_ready
            if ready:
                return ready

    def _arm(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future, fd_ready: list) -> Any:
        undo: list[Callable[[], Any]] = []
        for sock, flags in self.sockets:
            if isinstance(sock, Socket):
                sock._waiters.append(fut)
                sock._core.arm()
                continue
            fd = sock if isinstance(sock, int) else sock.fileno()

            def hit(s: Any = sock, ev: int = 0) -> None:
                fd_ready.append((s, ev))
                _expire(fut)

            if flags & c.POLLIN:
                loop.add_reader(fd, hit, sock, c.POLLIN)
                undo.append(lambda fd=fd: loop.remove_reader(fd))
            if flags & c.POLLOUT:
                loop.add_writer(fd, hit, sock, c.POLLOUT)
                undo.append(lambda fd=fd: loop.remove_writer(fd))

        def cleanup() -> None:
            for fn in undo:
                fn()
            for sock, _ in self.sockets:
                if isinstance(sock, Socket) and fut in sock._waiters:
                    sock._waiters.remove(fut)

        return cleanup
