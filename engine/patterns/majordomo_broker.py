"""Majordomo broker (RFC 7) with the management interface (RFC 8).

`BrokerCore` is the whole protocol, sans I/O: ROUTER messages in, ROUTER messages out, plus a
`tick` for heartbeats and expiry. `MajordomoBroker` (sync) and `AsyncMajordomoBroker` (asyncio)
are thin loops that move frames between one ROUTER socket and the core.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import engine
import engine.asyncio

from .majordomo_common import (
    CLIENT_HEADER,
    DISCONNECT,
    HEARTBEAT,
    HEARTBEAT_INTERVAL_MS,
    HEARTBEAT_LIVENESS,
    MAX_QUEUED_REQUESTS,
    MMI_FOUND,
    MMI_NOT_FOUND,
    MMI_NOT_IMPLEMENTED,
    MMI_PREFIX,
    MMI_SERVICE,
    READY,
    REPLY,
    REQUEST,
    REQUEST_TTL_MS,
    WORKER_HEADER,
    Frames,
    StopSignal,
    ms_until,
    parse_worker_command,
    valid_service,
    worker_command,
)

log = logging.getLogger(__name__)

#: Messages handled per socket wake-up before timers get a look, so a flood cannot starve them.
RECV_BATCH = 256


@dataclass
class _Request:
    client: bytes
    body: Frames
    queued_at: float


@dataclass(eq=False)
class _Service:
    name: bytes
    requests: deque[_Request] = field(default_factory=deque)
    # Idle workers, least recently used first (dicts keep insertion order; removal is O(1)).
    idle: dict[bytes, _Worker] = field(default_factory=dict)
    workers: set[bytes] = field(default_factory=set)


@dataclass(eq=False)
class _Worker:
    identity: bytes
    service: _Service
    expiry: float
    last_sent: float
    job: _Request | None = None


class BrokerCore:
    """Per-service request queues, LRU worker dispatch, heartbeats and MMI, with no sockets.

    Every method takes the current monotonic time and returns the messages to send on the
    ROUTER socket (routing id first). Nothing here raises on hostile input: it is dropped.
    """

    def __init__(
        self,
        heartbeat_ms: int = HEARTBEAT_INTERVAL_MS,
        liveness: int = HEARTBEAT_LIVENESS,
        request_ttl_ms: int = REQUEST_TTL_MS,
        max_queued: int = MAX_QUEUED_REQUESTS,
    ) -> None:
        if heartbeat_ms <= 0 or liveness <= 0:
            raise ValueError("heartbeat_ms and liveness must be positive")
        self.interval = heartbeat_ms / 1000
        self.expiry_span = self.interval * liveness
        self.request_ttl = request_ttl_ms / 1000
        self.max_queued = max_queued
        self.services: dict[bytes, _Service] = {}
        self.workers: dict[bytes, _Worker] = {}
        self.queued = 0
        self.next_tick = 0.0  # the first tick comes as soon as the loop asks

    # -- input ---------------------------------------------------------------------------------

    def handle(self, msg: Sequence[bytes], now: float) -> list[Frames]:
        """One message as received on the ROUTER socket: [routing id, "", header, ...]."""
        out: list[Frames] = []
        if len(msg) < 4 or msg[1]:
            return out
        sender, header = msg[0], msg[2]
        if header == CLIENT_HEADER:
            self._client_message(sender, list(msg[3:]), now, out)
        elif header == WORKER_HEADER:
            self._worker_message(sender, msg[1:], now, out)
        return out

    def _client_message(self, client: bytes, frames: Frames, now: float, out: list[Frames]) -> None:
        # frames: [service, body...]; RFC 7 asks for at least one body frame.
        if len(frames) < 2 or not valid_service(frames[0]):
            return
        service, body = frames[0], frames[1:]
        if service.startswith(MMI_PREFIX):
            out.append([client, b"", CLIENT_HEADER, service, self._mmi(service, body)])
            return
        if self.queued >= self.max_queued:
            # Debug level: under a flood, a line per dropped request would be a flood of its own.
            log.debug("request queue full (%d): dropping a request for %r", self.queued, service)
            return
        queue = self._service(service)
        queue.requests.append(_Request(client, body, now))
        self.queued += 1
        self._dispatch(queue, now, out)

    def _mmi(self, service: bytes, body: Frames) -> bytes:
        if service == MMI_SERVICE:
            known = self.services.get(body[0])
            return MMI_FOUND if known is not None and known.workers else MMI_NOT_FOUND
        return MMI_NOT_IMPLEMENTED

    def _worker_message(
        self, identity: bytes, frames: Sequence[bytes], now: float, out: list[Frames]
    ) -> None:
        parsed = parse_worker_command(frames)
        worker = self.workers.get(identity)
        if parsed is None:
            # RFC 7: drop invalid messages and treat the peer as invalid.
            if worker is not None:
                self._disconnect(worker, now, out, requeue=True)
            return
        command, rest = parsed
        if worker is not None:
            worker.expiry = now + self.expiry_span  # any command is a sign of life
        if command == READY:
            if worker is not None or rest[0].startswith(MMI_PREFIX):
                # A second READY, or a claim on the broker's own namespace (RFC 8).
                if worker is not None:
                    self._disconnect(worker, now, out, requeue=True)
                else:
                    out.append([identity, *worker_command(DISCONNECT)])
                return
            self._register(identity, rest[0], now, out)
        elif command == DISCONNECT:
            if worker is not None:
                # A deliberate exit mid-job is the worker giving the job up: its client retries.
                self._forget(worker, requeue=False)
        elif worker is None:
            # A valid command from a stranger (e.g. after a broker restart): make it re-register.
            out.append([identity, *worker_command(DISCONNECT)])
        elif command == HEARTBEAT:
            pass
        elif command == REPLY and worker.job is not None and worker.job.client == rest[0]:
            out.append([rest[0], b"", CLIENT_HEADER, worker.service.name, *rest[2:]])
            worker.job = None
            self._make_idle(worker, now, out)
        else:
            # A REQUEST from a worker, or a REPLY nobody asked for: unexpected (RFC 7).
            self._disconnect(worker, now, out, requeue=True)

    # -- worker bookkeeping ----------------------------------------------------------------------

    def _service(self, name: bytes) -> _Service:
        service = self.services.get(name)
        if service is None:
            service = self.services[name] = _Service(name)
        return service

    def _register(self, identity: bytes, name: bytes, now: float, out: list[Frames]) -> None:
        service = self._service(name)
        worker = _Worker(identity, service, expiry=now + self.expiry_span, last_sent=now)
        self.workers[identity] = worker
        service.workers.add(identity)
        log.debug("worker %s ready for %r", identity.hex(), name)
        self._make_idle(worker, now, out)

    def _make_idle(self, worker: _Worker, now: float, out: list[Frames]) -> None:
        worker.service.idle[worker.identity] = worker
        self._dispatch(worker.service, now, out)

    def _dispatch(self, service: _Service, now: float, out: list[Frames]) -> None:
        while service.requests and service.idle:
            identity = next(iter(service.idle))
            worker = service.idle.pop(identity)
            request = service.requests.popleft()
            self.queued -= 1
            worker.job = request
            worker.last_sent = now
            out.append([identity, *worker_command(REQUEST, request.client, b"", *request.body)])

    def _disconnect(self, worker: _Worker, now: float, out: list[Frames], requeue: bool) -> None:
        out.append([worker.identity, *worker_command(DISCONNECT)])
        self._forget(worker, requeue)
        self._dispatch(worker.service, now, out)

    def _forget(self, worker: _Worker, requeue: bool) -> None:
        service = worker.service
        self.workers.pop(worker.identity, None)
        service.idle.pop(worker.identity, None)
        service.workers.discard(worker.identity)
        if worker.job is not None and requeue:
            # Workers are idempotent (RFC 7): give the job to the next worker, first in line.
            service.requests.appendleft(worker.job)
            self.queued += 1
        worker.job = None

    # -- timers --------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Frames]:
        """Heartbeat quiet workers, expire silent ones and stale requests. Call at `next_tick`."""
        out: list[Frames] = []
        if now < self.next_tick:
            return out
        self.next_tick = now + self.interval
        quiet = now - self.interval / 2
        for worker in list(self.workers.values()):
            if now >= worker.expiry:
                log.info("worker %s for %r expired", worker.identity.hex(), worker.service.name)
                self._forget(worker, requeue=True)
                self._dispatch(worker.service, now, out)
            elif worker.last_sent <= quiet:
                # RFC 7: no HEARTBEAT to a worker that was just sent something else.
                worker.last_sent = now
                out.append([worker.identity, *worker_command(HEARTBEAT)])
        oldest = now - self.request_ttl
        for name, service in list(self.services.items()):
            requests = service.requests
            while requests and requests[0].queued_at <= oldest:
                requests.popleft()
                self.queued -= 1
            if not requests and not service.workers:
                del self.services[name]  # unknown names must not pile up
        return out


class MajordomoBroker:
    """The broker on a sync ROUTER socket. `run()` blocks until `stop()` (thread/signal safe)."""

    def __init__(
        self,
        endpoint: str = "tcp://*:5555",
        *,
        heartbeat_ms: int = HEARTBEAT_INTERVAL_MS,
        liveness: int = HEARTBEAT_LIVENESS,
        request_ttl_ms: int = REQUEST_TTL_MS,
        context: engine.Context | None = None,
    ) -> None:
        self.core = BrokerCore(heartbeat_ms, liveness, request_ttl_ms)
        self._socket = (context or engine.Context.instance()).socket(engine.ROUTER)
        self._socket.linger = 0
        self.endpoint: str = self._socket.bind(endpoint)
        self._stop = StopSignal()

    def run(self) -> None:
        sock, core, stop = self._socket, self.core, self._stop
        poller = engine.Poller()
        poller.register(sock, engine.POLLIN)
        poller.register(stop.fd, engine.POLLIN)
        while not stop.is_set():
            ready = dict(poller.poll(ms_until(core.next_tick, time.monotonic())))
            if sock in ready:
                for _ in range(RECV_BATCH):
                    try:
                        msg = sock.recv_multipart(engine.DONTWAIT)
                    except engine.Again:
                        break
                    for reply in core.handle(msg, time.monotonic()):
                        sock.send_multipart(reply)
            for reply in core.tick(time.monotonic()):
                sock.send_multipart(reply)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._socket.close(0)
        self._stop.close()

    def __enter__(self) -> MajordomoBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMajordomoBroker:
    """The same broker inside an asyncio program; `await run()` until the task is cancelled."""

    def __init__(
        self,
        endpoint: str = "tcp://*:5555",
        *,
        heartbeat_ms: int = HEARTBEAT_INTERVAL_MS,
        liveness: int = HEARTBEAT_LIVENESS,
        request_ttl_ms: int = REQUEST_TTL_MS,
        context: engine.asyncio.Context | None = None,
    ) -> None:
        self.core = BrokerCore(heartbeat_ms, liveness, request_ttl_ms)
        self._socket = (context or engine.asyncio.Context.instance()).socket(engine.ROUTER)
        self._socket.linger = 0
        self.endpoint: str = self._socket.bind(endpoint)

    async def run(self) -> None:
        sock, core = self._socket, self.core
        while True:
            if await sock.poll(ms_until(core.next_tick, time.monotonic())):
                for _ in range(RECV_BATCH):
                    try:
                        msg = await sock.recv_multipart(engine.DONTWAIT)
                    except engine.Again:
                        break
                    for reply in core.handle(msg, time.monotonic()):
                        await sock.send_multipart(reply)
            for reply in core.tick(time.monotonic()):
                await sock.send_multipart(reply)
            # Sends leave at the next loop pass, and a busy socket never makes poll() wait.
            await asyncio.sleep(0)

    def close(self) -> None:
        self._socket.close(0)
