"""Majordomo worker API (RFC 7, MDP/Worker): register a service, answer requests, heartbeat.

`WorkerCore` holds the dialog (READY, reply envelopes, heartbeat timers, broker liveness) with no
sockets; `MajordomoWorker` (sync) and `AsyncMajordomoWorker` (asyncio) drive it on a DEALER.
The sync face heartbeats only while inside `recv()`, so its handler must return within
`heartbeat_ms * liveness`; the asyncio `serve()` keeps heartbeating while a coroutine handler runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import select
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import engine
import engine.asyncio

from .majordomo_common import (
    DISCONNECT,
    HEARTBEAT,
    HEARTBEAT_INTERVAL_MS,
    HEARTBEAT_LIVENESS,
    READY,
    RECONNECT_DELAY_MS,
    REPLY,
    REQUEST,
    Frames,
    StopSignal,
    as_bytes,
    body_frames,
    ms_until,
    parse_worker_command,
    valid_service,
    worker_command,
)

log = logging.getLogger(__name__)

#: On close, time given to a goodbye DISCONNECT to reach a live broker; bounded so exit never hangs.
DISCONNECT_LINGER_MS = 200

Reply = Sequence[bytes | str]
SyncHandler = Callable[[Frames], Reply]
AsyncHandler = Callable[[Frames], Reply | Awaitable[Reply]]


def _checked(reply: Reply | None) -> Reply:
    """A handler's reply, refusing what RFC 7 cannot carry (a REPLY has at least one frame)."""
    if reply is None or isinstance(reply, bytes | str) or not reply:
        raise ValueError(f"a handler must return a non-empty sequence of frames, not {reply!r}")
    return reply


@dataclass
class WorkerRequest:
    client: bytes
    body: Frames


class WorkerCore:
    """One worker's side of MDP/Worker. Times are monotonic seconds; outputs are DEALER frames.

    When `reconnect` turns true the face must drop its socket (sending nothing more), wait, open
    a new one and send `connected()`'s READY: the broker said DISCONNECT or fell silent.
    """

    def __init__(
        self,
        service: bytes,
        heartbeat_ms: int = HEARTBEAT_INTERVAL_MS,
        liveness: int = HEARTBEAT_LIVENESS,
    ) -> None:
        if not valid_service(service):
            raise ValueError(f"invalid service name {service!r}")
        self.service = service
        self.interval = heartbeat_ms / 1000
        self.expiry_span = self.interval * liveness
        self.reply_to: bytes | None = None
        self.reconnect = True  # no session yet
        self.broker_expiry = math.inf
        self.heartbeat_at = math.inf

    @property
    def deadline(self) -> float:
        return min(self.heartbeat_at, self.broker_expiry)

    def connected(self, now: float) -> Frames:
        """Start a session on a fresh socket: the READY to send."""
        self.reconnect = False
        self.reply_to = None
        self.broker_expiry = now + self.expiry_span
        self.heartbeat_at = now + self.interval
        return worker_command(READY, self.service)

    def on_message(self, frames: Sequence[bytes], now: float) -> WorkerRequest | None:
        """Take one message from the broker; returns a request to work on, if it is one."""
        parsed = parse_worker_command(frames)
        if parsed is None or self.reconnect:
            return None  # garbage, or the session is already over
        self.broker_expiry = now + self.expiry_span
        command, rest = parsed
        if command == REQUEST and self.reply_to is None:
            self.reply_to = rest[0]
            return WorkerRequest(rest[0], rest[2:])
        if command == DISCONNECT:
            self.reconnect = True
        # HEARTBEAT needs nothing more; anything else from a broker is meaningless: dropped.
        return None

    def reply(self, body: Frames, now: float) -> Frames | None:
        """The REPLY for the current request, or None if the session that took it is gone."""
        if not body:
            raise ValueError("a reply needs at least one frame")
        client, self.reply_to = self.reply_to, None
        if client is None or self.reconnect:
            return None
        self.heartbeat_at = now + self.interval  # the reply counts as a heartbeat
        return worker_command(REPLY, client, b"", *body)

    def abandon(self) -> None:
        """Give up the current request without replying. The broker only learns a worker will
        not answer when it disconnects, so start over: its client will retry."""
        if self.reply_to is not None:
            self.reply_to = None
            self.reconnect = True

    def tick(self, now: float) -> Frames | None:
        """A HEARTBEAT to send, if due; sets `reconnect` once the broker is silent too long."""
        if self.reconnect:
            return None
        if now >= self.broker_expiry:
            log.warning("broker silent for %.1fs: reconnecting", self.expiry_span)
            self.reconnect = True
            return None
        if now >= self.heartbeat_at:
            self.heartbeat_at = now + self.interval
            return worker_command(HEARTBEAT)
        return None


class MajordomoWorker:
    """A blocking worker: `request = worker.recv(reply)` in a loop, or `serve(handler)`.

    `recv()` returns None once `stop()` was called (from a signal handler or another thread).
    """

    def __init__(
        self,
        broker: str,
        service: str | bytes,
        *,
        heartbeat_ms: int = HEARTBEAT_INTERVAL_MS,
        liveness: int = HEARTBEAT_LIVENESS,
        reconnect_ms: int = RECONNECT_DELAY_MS,
        context: engine.Context | None = None,
    ) -> None:
        self.core = WorkerCore(as_bytes(service), heartbeat_ms, liveness)
        self.broker = broker
        self.reconnect_delay = reconnect_ms / 1000
        self._context = context or engine.Context.instance()
        self._socket: engine.Socket | None = None
        self._poller = engine.Poller()
        self._stop = StopSignal()
        self._connect()

    def _connect(self) -> None:
        sock = self._context.socket(engine.DEALER)
        sock.linger = 0
        sock.connect(self.broker)
        self._socket = sock
        self._poller = engine.Poller()
        self._poller.register(sock, engine.POLLIN)
        self._poller.register(self._stop.fd, engine.POLLIN)
        sock.send_multipart(self.core.connected(time.monotonic()))

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def _reconnect(self) -> None:
        self._drop_socket()
        # Wait out the delay, but wake at once if stop() is called meanwhile.
        select.select([self._stop.fd], [], [], self.reconnect_delay)
        if not self._stop.is_set():
            self._connect()

    def recv(self, reply: Reply | None = None) -> Frames | None:
        """Send `reply` to the request last returned (None: give it up), then wait for the next."""
        core = self.core
        if reply is not None:
            msg = core.reply(body_frames(reply), time.monotonic())
            if msg is not None and self._socket is not None:
                self._socket.send_multipart(msg)
        else:
            core.abandon()
        while not self._stop.is_set():
            if core.reconnect:
                self._reconnect()
                continue
            request = self._step()
            if request is not None:
                return request.body
        return None

    def _step(self) -> WorkerRequest | None:
        core, sock = self.core, self._socket
        assert sock is not None
        ready = dict(self._poller.poll(ms_until(core.deadline, time.monotonic())))
        if sock in ready:
            # Drain before the liveness check, so queued heartbeats count.
            while True:
                try:
                    msg = sock.recv_multipart(engine.DONTWAIT)
                except engine.Again:
                    break
                request = core.on_message(msg, time.monotonic())
                if request is not None:
                    return request
        heartbeat = core.tick(time.monotonic())
        if heartbeat is not None:
            sock.send_multipart(heartbeat)
        return None

    def serve(self, handler: SyncHandler) -> None:
        """Answer requests with `handler(body) -> reply frames` until `stop()`."""
        reply: Reply | None = None
        while (request := self.recv(reply)) is not None:
            try:
                reply = _checked(handler(request))
            except Exception:
                log.exception("handler failed: giving the request up")
                reply = None

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Say DISCONNECT (best effort) and release the socket."""
        sock = self._socket
        if sock is not None and not self.core.reconnect:
            with contextlib.suppress(engine.ZMQError):
                sock.send_multipart(worker_command(DISCONNECT), engine.DONTWAIT)
            sock.close(DISCONNECT_LINGER_MS)
        self._drop_socket()
        self._stop.close()

    def __enter__(self) -> MajordomoWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMajordomoWorker:
    """The worker for asyncio programs: `await recv(reply)`, or `await serve(handler)` where the
    handler may be a coroutine function (heartbeats go on while it runs). Stop by cancelling."""

    def __init__(
        self,
        broker: str,
        service: str | bytes,
        *,
        heartbeat_ms: int = HEARTBEAT_INTERVAL_MS,
        liveness: int = HEARTBEAT_LIVENESS,
        reconnect_ms: int = RECONNECT_DELAY_MS,
        context: engine.asyncio.Context | None = None,
    ) -> None:
        self.core = WorkerCore(as_bytes(service), heartbeat_ms, liveness)
        self.broker = broker
        self.reconnect_delay = reconnect_ms / 1000
        self._context = context or engine.asyncio.Context.instance()
        self._socket: engine.asyncio.Socket | None = None

    async def _connect(self) -> None:
        sock = self._context.socket(engine.DEALER)
        sock.linger = 0
        sock.connect(self.broker)
        self._socket = sock
        await sock.send_multipart(self.core.connected(time.monotonic()))

    async def _reconnect(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None
            await asyncio.sleep(self.reconnect_delay)
        await self._connect()

    async def recv(self, reply: Reply | None = None) -> Frames:
        """Send `reply` to the request last returned (None: give it up), then wait for the next."""
        core = self.core
        if reply is not None:
            msg = core.reply(body_frames(reply), time.monotonic())
            if msg is not None and self._socket is not None:
                await self._socket.send_multipart(msg)
        else:
            core.abandon()
        while True:
            request = await self._step()
            if request is not None:
                return request.body

    async def _step(self, busy: asyncio.Future[Any] | None = None) -> WorkerRequest | None:
        """Wait for broker traffic, a timer or `busy` to finish, then handle what came."""
        core = self.core
        if core.reconnect:
            if busy is not None:
                await asyncio.wait([busy])  # that job is void; start over once it is done
            else:
                await self._reconnect()
            return None
        sock = self._socket
        assert sock is not None
        timeout = ms_until(core.deadline, time.monotonic())
        if busy is None:
            ready = await sock.poll(timeout)
        else:
            poll = asyncio.ensure_future(sock.poll(timeout))
            await asyncio.wait([poll, busy], return_when=asyncio.FIRST_COMPLETED)
            if not poll.done():
                poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poll
            ready = poll.result() if not poll.cancelled() else 0
        request = None
        if ready:
            while request is None:
                try:
                    msg = await sock.recv_multipart(engine.DONTWAIT)
                except engine.Again:
                    break
                request = core.on_message(msg, time.monotonic())
        heartbeat = core.tick(time.monotonic())
        if heartbeat is not None:
            await sock.send_multipart(heartbeat)
        return request

    async def serve(self, handler: AsyncHandler) -> None:
        """Answer requests with `handler(body)` (plain or coroutine) until cancelled."""
        reply: Reply | None = None
        while True:
            request = await self.recv(reply)
            reply = await self._run(handler, request)

    async def _run(self, handler: AsyncHandler, request: Frames) -> Reply | None:
        try:
            result = handler(request)
            if not inspect.isawaitable(result):
                return _checked(result)
            task = asyncio.ensure_future(result)
            try:
                while not task.done():
                    await self._step(task)
            finally:
                task.cancel()
            return _checked(task.result())
        except Exception:
            log.exception("handler failed: giving the request up")
            return None

    async def close(self) -> None:
        """Say DISCONNECT (best effort) and release the socket."""
        sock = self._socket
        self._socket = None
        if sock is None:
            return
        if not self.core.reconnect:
            with contextlib.suppress(engine.ZMQError):
                await sock.send_multipart(worker_command(DISCONNECT), engine.DONTWAIT)
            await asyncio.sleep(0)  # let the send leave before the socket goes
        sock.close(DISCONNECT_LINGER_MS)
