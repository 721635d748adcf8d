"""Paranoid Pirate (ZeroMQ RFC 6, PPP): an LRU worker queue with heartbeats both ways.

Workers (DEALER) connect to the queue's ROUTER backend and open each conversation with READY
(`\\x01`); queue and worker then exchange HEARTBEAT (`\\x02`) every interval, and each side takes
the other for dead after `liveness` silent intervals. The queue stops using a dead worker and
sends the request it was holding to another one; a worker that loses the queue reconnects on a
fresh socket after an exponential back-off.

The logic is sans-I/O: `WorkerPool` (ready list, expiry, who holds which request, the pending
queue), `QueueCore` (PPP framing around the pool) and `WorkerCore` (the worker's side). The I/O
faces are thin: `ParanoidPirateQueue` and `ParanoidPirateWorker` (sync) and
`AsyncParanoidPirateWorker` (asyncio).

Run standalone: `python -m engine.patterns.paranoid_pirate queue|worker --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from .. import Context
from .. import constants as c
from ..asyncio import Context as AsyncContext
from ..errors import Again, ZMQError
from .demo_cli import check_connect, positive, setup_logging, startup, verbose_option
from .demo_cli import stop_on_signals as _stop_on_signals
from .simple_pirate import STOP_POLL_S, Handler, QueueSockets, echo, show_id, split_envelope
from .worker_pool import (  # noqa: F401 - re-exported: the public API lives here too
    BUSY_REPLY,
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_LIVENESS,
    PPP_HEARTBEAT,
    PPP_READY,
    RECONNECT_INIT_S,
    RECONNECT_MAX_S,
    Outbox,
    QueueCore,
    Request,
    WorkerPool,
    WorkerRecord,
)

log = logging.getLogger(__name__)


class ParanoidPirateQueue(QueueSockets):
    """The sync RFC 6 queue: binds at construction, then `run()` until `stop()`."""

    def __init__(
        self,
        frontend: str,
        backend: str,
        *,
        interval: float = HEARTBEAT_INTERVAL_S,
        liveness: int = HEARTBEAT_LIVENESS,
        max_pending: int | None = None,
        busy_reply: Sequence[bytes] = (BUSY_REPLY,),
        context: Context | None = None,
    ) -> None:
        super().__init__(frontend, backend, context)
        pool = WorkerPool(interval=interval, liveness=liveness, max_pending=max_pending)
        self.core = QueueCore(pool, busy_reply=busy_reply)

    def run(self) -> None:
        self._running = True
        core, frontend, backend = self.core, self.frontend, self.backend
        backend_only, both = self._pollers()
        while self._running:
            self._send(core.tick(time.monotonic()))
            poller = both if core.accepting else backend_only
            wait = min(core.timeout(time.monotonic()), STOP_POLL_S)
            events = dict(poller.poll(wait * 1000))
            if backend in events:
                self._send(core.from_backend(backend.recv_multipart(), time.monotonic()))
            if frontend in events and core.accepting:
                self._send(core.from_frontend(frontend.recv_multipart(), time.monotonic()))

    def _send(self, out: Outbox) -> None:
        for msg in out.frontend:
            self.frontend.send_multipart(msg, c.DONTWAIT)  # a gone client: ROUTER drops it
        pending = out.backend
        while pending:
            msg = pending.pop(0)
            try:
                self.backend.send_multipart(msg, c.DONTWAIT)
            except ZMQError as exc:  # EAGAIN: not reading; EHOSTUNREACH: gone. Dead either way.
                if exc.errno not in (c.EAGAIN, c.EHOSTUNREACH):
                    raise
                pending.extend(self.core.unroutable(msg[0], time.monotonic()).backend)


# -- the worker ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Job:
    """A request for the worker: the address stack to reply to, and the body to handle."""

    envelope: list[bytes]
    body: list[bytes]


class WorkerCore:
    """The worker's side of RFC 6, without I/O: the queue's liveness, heartbeats and back-off."""

    def __init__(
        self,
        *,
        interval: float = HEARTBEAT_INTERVAL_S,
        liveness: int = HEARTBEAT_LIVENESS,
        reconnect_init: float = RECONNECT_INIT_S,
        reconnect_max: float = RECONNECT_MAX_S,
    ) -> None:
        if interval <= 0 or liveness < 1 or reconnect_init <= 0:
            raise ValueError("interval and reconnect_init must be positive, liveness >= 1")
        self.interval = interval
        self.ttl = interval * liveness
        self.reconnect_init = reconnect_init
        self.reconnect_max = max(reconnect_max, reconnect_init)
        self.backoff = reconnect_init
        self.expiry = 0.0
        self.heartbeat_at = 0.0
        self.generation = 0  # connections made so far

    def connected(self, now: float) -> list[bytes]:
        """A fresh socket is connected: the message to send first (READY)."""
        self.generation += 1
        self.expiry = now + self.ttl
        self.heartbeat_at = now + self.interval
        return [PPP_READY]

    def on_message(self, msg: list[bytes], now: float) -> Job | None:
        """Anything from the queue proves it alive; returns the Job if `msg` is a request."""
        self.expiry = now + self.ttl
        self.backoff = self.reconnect_init  # the link works: the next loss starts afresh
        if msg == [PPP_HEARTBEAT]:
            return None
        envelope, body = split_envelope(msg)
        if len(msg) == 1 or not envelope:
            log.warning("dropped invalid message from the queue (%d frames)", len(msg))
            return None
        log.debug("job from %s", show_id(envelope[0]))
        return Job(envelope, body)

    @staticmethod
    def reply(job: Job, body: Sequence[bytes]) -> list[bytes]:
        return job.envelope + [bytes(f) for f in body]

    def due(self, now: float) -> list[list[bytes]]:
        """The heartbeat to send, if one is due."""
        if now < self.heartbeat_at:
            return []
        self.heartbeat_at = now + self.interval
        return [[PPP_HEARTBEAT]]

    def lost(self, now: float) -> bool:
        """The queue has been silent for `liveness` intervals: reconnect."""
        return now >= self.expiry

    def next_backoff(self) -> float:
        """The delay before the next reconnect; each consecutive loss doubles it up to the cap."""
        delay = self.backoff
        self.backoff = min(self.backoff * 2, self.reconnect_max)
        return delay

    def timeout(self, now: float) -> float:
        return max(0.0, min(self.heartbeat_at, self.expiry) - now)


#: A handler for the asyncio worker: plain, or a coroutine function.
AsyncHandler = Callable[[list[bytes]], list[bytes] | Awaitable[list[bytes]]]


class _WorkerBase:
    """What both worker faces share: settings, the WorkerCore, and (re)connecting."""

    _context_class: Any = Context

    def __init__(
        self,
        backend: str,
        handler: Any = echo,
        *,
        interval: float = HEARTBEAT_INTERVAL_S,
        liveness: int = HEARTBEAT_LIVENESS,
        reconnect_init: float = RECONNECT_INIT_S,
        reconnect_max: float = RECONNECT_MAX_S,
        name: bytes | None = None,
        context: Any = None,
    ) -> None:
        self.backend = backend
        self.handler = handler
        self.name = name  # None: the queue assigns routing ids
        self.core = WorkerCore(
            interval=interval,
            liveness=liveness,
            reconnect_init=reconnect_init,
            reconnect_max=reconnect_max,
        )
        self.context = context or self._context_class.instance()
        self.handled = 0
        self._running = False

    def _open(self) -> tuple[Any, list[bytes]]:
        """A fresh DEALER to the queue, and the READY it must send first."""
        sock = self.context.socket(c.DEALER)
        sock.linger = 0
        ready = self.core.connected(time.monotonic())
        if self.name is not None:
            # A new id per connection: the queue may still hold the old one's route.
            sock.setsockopt(c.ROUTING_ID, b"%s-%d" % (self.name, self.core.generation))
        sock.connect(self.backend)
        log.info("worker connecting to %s (connection %d)", self.backend, self.core.generation)
        return sock, ready

    @staticmethod
    def _offer(send: Callable[[list[bytes]], Any], msg: list[bytes]) -> None:
        """Send READY or a heartbeat without waiting. With no peer to take it (a queue that
        refused this connection ends it, pipe and all, as libzmq does) it is dropped, and
        the queue's silence makes this worker reconnect; a wait here would never end."""
        try:
            send(msg)
        except Again:
            pass

    def _naps(self, delay: float) -> Iterator[float]:
        """`delay` cut into slices, so stop() (a signal) is seen promptly during a back-off."""
        deadline = time.monotonic() + delay
        while self._running and (left := deadline - time.monotonic()) > 0:
            yield min(left, STOP_POLL_S)

    def _backoff(self) -> float:
        delay = self.core.next_backoff()
        log.info("queue-lost reconnect-in=%.3f", delay)
        return delay

    def stop(self) -> None:
        """Ask run() to return; safe from a signal handler."""
        self._running = False


class ParanoidPirateWorker(_WorkerBase):
    """The sync RFC 6 worker: `run()` answers requests with `handler(body)` until `stop()`.

    Takes `backend`, `handler` (a Handler; default echo) and keyword options `interval`,
    `liveness`, `reconnect_init`, `reconnect_max` (seconds), `name` (routing id prefix) and
    `context`. The handler runs on the loop's thread, so no heartbeats go out meanwhile: it
    must return well within `interval * liveness`, or the queue takes the worker for dead and
    gives the request to another one (AsyncParanoidPirateWorker heartbeats during long jobs).
    """

    handler: Handler

    def run(self) -> None:
        core = self.core
        self._running = True
        sock, ready = self._open()
        offer = self._offer
        try:
            offer(partial(sock.send_multipart, flags=c.DONTWAIT), ready)
            while self._running:
                if sock.poll(min(core.timeout(time.monotonic()), STOP_POLL_S) * 1000):
                    job = core.on_message(sock.recv_multipart(), time.monotonic())
                    if job is not None:
                        sock.send_multipart(core.reply(job, self.handler(job.body)))
                        self.handled += 1
                elif core.lost(time.monotonic()):
                    sock.close(linger=0)
                    for nap in self._naps(self._backoff()):
                        time.sleep(nap)
                    if not self._running:
                        break
                    sock, ready = self._open()
                    offer(partial(sock.send_multipart, flags=c.DONTWAIT), ready)
                for msg in core.due(time.monotonic()):
                    offer(partial(sock.send_multipart, flags=c.DONTWAIT), msg)
        finally:
            sock.close(linger=0)


def _ms_until(seconds: float) -> int:
    """A poll timeout in whole milliseconds, rounded up: rounded down, the poll would end just
    before the deadline and the next one (0 ms) would spin until it."""
    return max(0, math.ceil(seconds * 1000))


class AsyncParanoidPirateWorker(_WorkerBase):
    """The asyncio RFC 6 worker: `await run()` until `stop()` or cancellation.

    Same arguments as ParanoidPirateWorker (an asyncio Context). The handler may be a
    coroutine function; heartbeats keep going while it runs, so long jobs are safe.
    """

    _context_class = AsyncContext
    handler: AsyncHandler

    #: The task of run() while it sleeps (polls, or backs off), for stop() to wake; and
    #: whether stop() did, so that cancellation is not taken for anyone else's.
    _sleeping: asyncio.Task[None] | None = None
    _woken_by_stop = False

    async def run(self) -> None:
        core = self.core
        self._running = True
        self._woken_by_stop = False
        sock, ready = self._connect()
        offer = self._offer
        try:
            offer(sock.send_multipart_now, ready)
            while self._running:
                # No STOP_POLL_S cap, unlike the sync face: stop() wakes this wait, so an idle
                # worker wakes only for heartbeats (about two a second fewer wake-ups in five).
                if await self._sleep(sock.poll(_ms_until(core.timeout(time.monotonic())))):
                    job = core.on_message(await sock.recv_multipart(), time.monotonic())
                    if job is not None:  # not a heartbeat
                        body = await self._handle(sock, job)
                        await sock.send_multipart(core.reply(job, body))
                        self.handled += 1
                elif core.lost(time.monotonic()):
                    sock.close(linger=0)
                    delay = self._backoff()
                    if self._running:
                        await self._sleep(asyncio.sleep(delay))
                    if not self._running:
                        break
                    sock, ready = self._connect()
                    offer(sock.send_multipart_now, ready)
                for msg in core.due(time.monotonic()):
                    offer(sock.send_multipart_now, msg)
        finally:
            sock.close(linger=0)

    async def _sleep(self, wait: Awaitable[Any]) -> Any:
        """Await ``wait``; None at once if stop() is called meanwhile."""
        task = self._sleeping = asyncio.current_task()
        try:
            return await wait
        except asyncio.CancelledError:
            # Ours (stop()) and nobody else's: swallowed. Another cancellation goes on.
            if not self._woken_by_stop or task is None or task.uncancel() > 0:
                raise
            return None
        finally:
            self._sleeping = None

    def stop(self) -> None:
        """Ask run() to return, at once if it is waiting; safe from a signal handler (one
        installed with the loop's ``add_signal_handler``; a plain one is seen within a
        heartbeat interval)."""
        self._running = False
        task = self._sleeping
        if task is not None and not self._woken_by_stop:
            self._woken_by_stop = True
            task.cancel()

    def _connect(self) -> tuple[Any, list[bytes]]:
        """A fresh socket and the READY to send on it first (gameserver.worker adds its
        credit to the READY)."""
        return self._open()

    async def _handle(self, sock: Any, job: Job) -> list[bytes]:
        result = self.handler(job.body)
        if not inspect.isawaitable(result):
            return result
        task = asyncio.ensure_future(result)
        try:
            while True:
                wait = max(self.core.timeout(time.monotonic()), 0.001)
                done, _ = await asyncio.wait({task}, timeout=wait)
                if done:
                    return task.result()
                for msg in self.core.due(time.monotonic()):
                    await sock.send_multipart(msg)
        finally:
            task.cancel()  # a no-op once done; stops the job if run() is cancelled


# -- command line --------------------------------------------------------------------------------


def _demo_handler(name: bytes, stamp: bool, work_s: float, is_async: bool) -> Any:
    """The CLI's echo worker: reply = request (+ the worker's name with --stamp)."""
    extra = [name] if stamp else []

    def handle(body: list[bytes]) -> list[bytes]:
        if work_s:
            time.sleep(work_s)
        return body + extra

    async def handle_async(body: list[bytes]) -> list[bytes]:
        if work_s:
            await asyncio.sleep(work_s)
        return body + extra

    return handle_async if is_async else handle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.patterns.paranoid_pirate", description=__doc__.split("\n\n")[0]
    )
    ms, count = positive(float), positive(int)
    common = verbose_option()
    common.add_argument("--interval-ms", type=ms, default=HEARTBEAT_INTERVAL_S * 1000)
    common.add_argument("--liveness", type=count, default=HEARTBEAT_LIVENESS)
    sub = parser.add_subparsers(dest="role", required=True)
    q = sub.add_parser("queue", parents=[common], help="run the RFC 6 queue")
    q.add_argument("--frontend", default="tcp://*:5555", help="endpoint clients connect to")
    q.add_argument("--backend", default="tcp://*:5556", help="endpoint workers connect to")
    q.add_argument(
        "--max-pending", type=count, help="bound the request queue (reply busy when full)"
    )
    q.add_argument("--busy-reply", default=BUSY_REPLY.decode(), help="reply body when full")
    w = sub.add_parser("worker", parents=[common], help="run an echo worker")
    w.add_argument("--backend", default="tcp://localhost:5556", help="the queue's backend")
    w.add_argument("--name", default=f"w{os.getpid()}", help="routing id prefix (default w<pid>)")
    w.add_argument("--stamp", action="store_true", help="append the worker's name to each reply")
    w.add_argument(
        "--work-ms", type=positive(float, zero=True), default=0.0, help="simulated work per request"
    )
    w.add_argument("--async", dest="use_async", action="store_true", help="use the asyncio worker")
    w.add_argument("--reconnect-init-ms", type=ms, default=RECONNECT_INIT_S * 1000)
    w.add_argument("--reconnect-max-ms", type=ms, default=RECONNECT_MAX_S * 1000)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    timing: dict[str, Any] = dict(interval=args.interval_ms / 1000, liveness=args.liveness)
    if args.role == "worker":
        name = args.name.encode()
        timing.update(
            reconnect_init=args.reconnect_init_ms / 1000,
            reconnect_max=args.reconnect_max_ms / 1000,
            name=name,
            handler=_demo_handler(name, args.stamp, args.work_ms / 1000, args.use_async),
        )
        # Start-up only: an error while serving keeps its traceback (see demo_cli). The
        # workers connect (as <name>-<connection>) only in run(), so check that first.
        with startup(parser.prog, args.backend):
            check_connect(args.backend, routing_id=name + b"-1")
        if args.use_async:
            asyncio.run(_serve_async(args.backend, timing))
            return 0
    ctx = Context()
    try:
        if args.role == "queue":
            busy = [args.busy_reply.encode()]
            with startup(parser.prog, args.frontend, args.backend):
                queue = ParanoidPirateQueue(
                    args.frontend,
                    args.backend,
                    max_pending=args.max_pending,
                    busy_reply=busy,
                    context=ctx,
                    **timing,
                )
            _stop_on_signals(queue.stop)
            try:
                queue.run()
            finally:
                queue.close()
        else:
            worker = ParanoidPirateWorker(args.backend, context=ctx, **timing)
            _stop_on_signals(worker.stop)
            worker.run()
    finally:
        ctx.destroy(linger=0)
    return 0


async def _serve_async(backend: str, options: dict[str, Any]) -> None:
    ctx = AsyncContext()
    worker = AsyncParanoidPirateWorker(backend, context=ctx, **options)
    _stop_on_signals(worker.stop)
    try:
        await worker.run()
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    sys.exit(main())
