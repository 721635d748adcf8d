"""The front server: the one address players talk to; it holds no game state.

Three sockets on one asyncio loop:

* **actions** (ROUTER): client requests, Lazy-Pirate/REQ framed ``[b"", request]``. The front
  checks size and shape, decodes the request, applies the per-session token bucket, and queues
  it; anything malformed, flooded or beyond the bounded queue is answered at once with an
  :class:`~gameserver.protocol.ErrorReply` and never reaches a worker.
* **workers** (ROUTER): stateless workers speaking Paranoid Pirate (RFC 6). The LRU ready list,
  heartbeats, expiry and re-dispatch of a dead worker's request are the pattern's
  :class:`~engine.patterns.paranoid_pirate.QueueCore`; this module only does the I/O around it.
* **updates** (XPUB): the state broadcast. Subscribers' filters reach the front, so each event
  is sent only to the clients subscribed to its topic.

The front also keeps the world moving: every ``tick_interval`` it queues a tick job (one at a
time) and publishes whatever the worker reports (NPC wanderings, time of day).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import orjson

import engine
import engine.asyncio as ezmq
from engine.patterns.paranoid_pirate import Outbox, QueueCore, WorkerPool
from engine.patterns.simple_pirate import show_id, split_envelope

from .admission import Admission, AdmissionPolicy, Login, budgeted_address, source_of
from .cluster_keys import ClusterAuthenticator, FrontSecurity, secure_front
from .limits import SocketLimits, limit_front
from .local_workers import LocalPort, secure_local
from .logins import LoginQueue
from .protocol import (
    MAX_REQUEST_BYTES,
    PING_BODY,
    ErrorCode,
    ErrorReply,
    LoginRequest,
    Pong,
    ProtocolError,
    decode_request,
    encode,
    login_only_job,
    request_job,
    split_result,
    tick_job,
)
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

#: The envelope of the front's own tick jobs. 16 bytes: never a generated routing id (5 bytes).
TICK_ROUTE = b"\x00crossroads-tick"
#: Frames larger than this make the engine drop the sender's connection: far above any valid
#: request (4 KiB), far below what would hurt memory.
MAX_WIRE_BYTES = 64 * 1024
#: Most routing frames a request may carry (clients behind a few proxies); longer envelopes
#: are not echoed back whole, so a hostile one cannot make the front amplify it.
MAX_HOPS = 8
#: Longest wait of the housekeeping while it drains or logins wait their turn.
MAX_WAIT_S = 0.2
#: A tick job unanswered for this many intervals is presumed lost and may be queued again.
TICK_STALE_INTERVALS = 10
#: Milliseconds closing sockets may spend delivering the last replies and events.
CLOSE_LINGER_MS = 1000
#: Warnings about bad input per second before they are summarised (a flood must not flood logs).
WARNINGS_PER_S = 5

BUSY = ErrorReply(code="unavailable", message="Server busy; please retry shortly.")
#: The fields every Pong starts with (protocol version and type), as the model defines them.
PONG_HEAD = Pong.model_construct(workers=0, idle=0, pending=0, draining=False).model_dump(
    include={"v", "type"}
)
SHUTTING_DOWN = ErrorReply(code="unavailable", message="The server is restarting; retry shortly.")


class FrontError(RuntimeError):
    """The front cannot start (an endpoint cannot be bound...)."""


@dataclass
class FrontStats:
    """Counters for monitoring and tests."""

    requests: int = 0  # accepted into the queue
    replies: int = 0  # worker answers relayed to clients
    refused: int = 0  # malformed or oversized
    rate_limited: int = 0
    busy: int = 0  # refused because the queue was full
    published: int = 0
    ticks: int = 0
    subscriptions: int = 0  # (un)subscribe messages seen on the XPUB


class _Throttle:
    """Allows ``per_second`` log lines, then counts the rest and reports the count later."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self.window = 0.0
        self.used = 0
        self.suppressed = 0

    def allow(self, now: float) -> bool:
        if now - self.window >= 1.0:
            if self.suppressed:
                log.warning("(%d similar warnings suppressed)", self.suppressed)
            self.window, self.used, self.suppressed = now, 0, 0
        if self.used < self.per_second:
            self.used += 1
            return True
        self.suppressed += 1
        return False


class Front:
    """Binds at construction; ``await run()`` serves until ``shutdown()`` has drained."""

    def __init__(
        self,
        *,
        actions_bind: str,
        updates_bind: str,
        workers_bind: str,
        max_pending: int = 1000,
        rate: float = 20.0,
        burst: float = 40.0,
        logins_per_s: float = 10.0,
        registration_burst: float = 30.0,
        tick_interval: float = 5.0,
        heartbeat_interval: float = 1.0,
        heartbeat_liveness: int = 3,
        drain_timeout: float = 10.0,
        security: FrontSecurity | None = None,
        limits: SocketLimits | None = None,
        admission: AdmissionPolicy | None = None,
        context: ezmq.Context | None = None,
        sticky_workers: bool = False,
        local_workers: LocalPort | None = None,
    ) -> None:
        """``local_workers``: also bind the worker backend on that private Unix socket, for
        the workers serve starts itself (PLAIN with this run's secret; local_workers.py).

        ``sticky_workers``: a player's actions go to one worker while it has credit
        (WorkerPool's sticky dispatch, homed by session token). For workers that keep a copy
        of the store (Redis): another worker's copy of that player's documents would be
        behind, and its first transaction refused. SQLite's workers keep none, and lose a
        little balance by it.

        A request that need not wait goes to the idle worker that finished last, with either
        store (WorkerPool's warm dispatch): actions that arrive one at a time keep one worker
        hot rather than waking each in turn, and any overlap still finds an idle one."""
        if tick_interval <= 0:
            raise ValueError("tick_interval must be positive")
        pool = WorkerPool(
            interval=heartbeat_interval,
            liveness=heartbeat_liveness,
            max_pending=max_pending,
            sticky=sticky_workers,
            warm=True,
        )
        self.core = QueueCore(pool, busy_reply=[encode(BUSY)])
        self.limiter = RateLimiter(rate, burst)
        # A connection may send (and ping) at twice the session rate: --rate raises all three.
        per_connection = {"rate": max(40.0, 2 * rate), "burst": max(80.0, 2 * burst)}
        self.admission = Admission(
            admission
            or AdmissionPolicy(
                request_rate=per_connection["rate"],
                request_burst=per_connection["burst"],
                ping_rate=per_connection["rate"],
                ping_burst=per_connection["burst"],
                front_login_rate=logins_per_s,
                front_login_burst=2 * logins_per_s,
                front_registration_burst=registration_burst,
            )
        )
        #: Logins wait here, a few at a time with the workers, so hashing never starves play.
        self.logins = LoginQueue()
        self.rate = rate
        self.tick_interval = tick_interval
        self.drain_timeout = drain_timeout
        self.stats = FrontStats()
        self.context = context or ezmq.Context()
        self._own_context = context is None
        self.actions = self.context.socket(engine.ROUTER)
        self.updates = self.context.socket(engine.XPUB)
        self.backend = self.context.socket(engine.ROUTER)
        # Message, connection, subscription, handshake and heartbeat limits (limits.py).
        limit_front(
            self.actions, self.updates, self.backend, limits or SocketLimits(), MAX_WIRE_BYTES
        )
        # A send to a departed worker must fail, so its job can go to another one at once.
        self.backend.setsockopt(engine.ROUTER_MANDATORY, 1)
        self._zap_task: asyncio.Task[None] | None = None
        self.zap: ClusterAuthenticator | None = None
        try:
            # CURVE and the ZAP handler (cluster_keys.py): set before binding.
            self.zap = secure_front(
                self.context,
                security,
                players=[self.actions, self.updates],
                workers=self.backend,
                local=local_workers,
            )
            self.actions_endpoint = self._bind(self.actions, actions_bind, "actions")
            self.updates_endpoint = self._bind(self.updates, updates_bind, "updates")
            self.workers_endpoint = self._bind(self.backend, workers_bind, "workers")
            #: Where serve's own workers connect (None: no local port).
            self.local_workers_endpoint: str | None = None
            if local_workers is not None:
                secure_local(self.backend)
                self.local_workers_endpoint = self._bind(
                    self.backend, local_workers.endpoint, "local workers"
                )
        except (FrontError, engine.ZMQError) as exc:
            self.close(linger=0)
            if isinstance(exc, FrontError):
                raise
            raise FrontError(f"cannot secure the front's sockets: {exc}") from None
        self._throttle = _Throttle(WARNINGS_PER_S)
        self._tick_due = 0.0  # the first tick goes out as soon as a worker is ready
        self._tick_sent: float | None = None
        self._drain_deadline: float | None = None
        #: What the housekeeping task sleeps on between its timer's wake-ups.
        self._woken: asyncio.Future[None] | None = None

    @staticmethod
    def _bind(sock: ezmq.Socket, endpoint: str, what: str) -> str:
        try:
            return sock.bind(endpoint)
        except engine.ZMQError as exc:
            raise FrontError(f"cannot bind the {what} endpoint {endpoint}: {exc}") from None

    # -- state ----------------------------------------------------------------------------------

    @property
    def pool(self) -> WorkerPool:
        return self.core.pool

    @property
    def worker_count(self) -> int:
        return len(self.pool.workers)

    @property
    def draining(self) -> bool:
        return self._drain_deadline is not None

    def in_flight(self) -> int:
        """Requests queued or held by a worker (tick jobs included)."""
        held = sum(1 for record in self.pool.workers.values() if record.request is not None)
        return held + len(self.pool.pending) + len(self.logins.waiting)

    def health(self) -> dict[str, object]:
        pool = self.pool
        return {
            "workers": len(pool.workers),
            "idle": pool.idle_count,
            "pending": len(pool.pending),
            "draining": self.draining,
            "logins_waiting": len(self.logins.waiting),
            **vars(self.stats),  # only ints: no deep copy needed (asdict was a third of a ping)
            "refused_keys": 0 if self.zap is None else self.zap.refused,
        }

    def pong(self) -> bytes:
        """The answer to a ping: the Pong message with ``health()``'s counters, encoded
        straight from a dict (health checks come often; the values are the front's own)."""
        return orjson.dumps({**PONG_HEAD, **self.health()})

    async def wait_for_workers(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` workers have said READY; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.worker_count < count:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- lifetime -------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop taking requests (they get "restarting"), finish the ones accepted, then let
        run() return. Safe to call from a signal handler, and more than once."""
        if self._drain_deadline is None:
            log.info("shutting down: finishing %d in-flight request(s)", self.in_flight())
            self._drain_deadline = time.monotonic() + self.drain_timeout
            self._nudge()  # housekeeping may be asleep until its next heartbeat

    def close(self, linger: int = CLOSE_LINGER_MS) -> None:
        if self._zap_task is not None:
            self._zap_task.cancel()
        if self.zap is not None:
            self.zap.stop()
        for sock in (self.actions, self.updates):
            sock.close(linger=linger)
        self.backend.close(linger=0)
        if self._own_context:
            self.context.destroy(linger=0)

    async def run(self) -> None:
        log.info(
            "front up: actions=%s updates=%s workers=%s",
            self.actions_endpoint,
            self.updates_endpoint,
            self.workers_endpoint,
        )
        if self.zap is not None and self._zap_task is None:
            self._zap_task = asyncio.create_task(self.zap.serve())
        # Each socket hands its messages to its handler in the loop pass that read them
        # (on_recv): no reader task wakes, no future is made per message. Reader tasks, each
        # awaiting its socket, cost a second loop pass per message: about a tenth of the
        # front's CPU per action at 100 actions/s (issue 12). The handlers never wait: every
        # send is DONTWAIT. The housekeeping stays a task on a timer.
        crashed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.backend.on_recv(self._from_backend, crashed)
        self.actions.on_recv(self._from_client_safely)
        self.updates.on_recv(self._from_subscriber, crashed)
        housekeeping = asyncio.create_task(self._housekeeping())
        try:
            done, _ = await asyncio.wait(
                [housekeeping, crashed], return_when=asyncio.FIRST_COMPLETED
            )
            for finished in done:
                finished.result()  # a handler's crash is the front's crash, as it was in one loop
        finally:
            for sock in (self.backend, self.actions, self.updates):
                sock.on_recv(None)
            housekeeping.cancel()
            await asyncio.gather(housekeeping, return_exceptions=True)
            if not crashed.done():
                crashed.cancel()
        log.info("front stopped taking work")

    async def _housekeeping(self) -> None:
        """Heartbeats, worker expiry, ticks, waiting logins and the drain: on a timer, and at
        once when a reader reports that the drain may be over (``_nudge``)."""
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            self._send(self.core.tick(now))
            self._admit_logins(now)
            if self._drain_deadline is not None:
                for envelope in self.logins.drop_waiting():
                    self._reply(envelope, [encode(SHUTTING_DOWN)])
                if self.in_flight() == 0:
                    return
                if now >= self._drain_deadline:
                    log.warning("drain timed out with %d request(s) left", self.in_flight())
                    return
            elif now >= self._tick_due:
                self._tick(now)
            self._woken = woken = loop.create_future()
            timer = loop.call_later(max(0.001, self._housekeeping_wait(now)), _settle, woken)
            try:
                await woken
            finally:
                timer.cancel()
                self._woken = None

    def _housekeeping_wait(self, now: float) -> float:
        """Seconds the housekeeping may sleep: until the next heartbeat, expiry or tick. The
        drain's end and a waiting login's turn are also looked for every MAX_WAIT_S (a stale
        login slot frees itself only with time); anything else that needs the housekeeping
        wakes it (_nudge), so an idle front sleeps until its next heartbeat."""
        due = min(self.core.timeout(now), self._tick_due - now)
        if self.draining or self.logins.waiting:
            due = min(due, MAX_WAIT_S)
        return due

    def _nudge(self) -> None:
        woken = self._woken
        if woken is not None:
            _settle(woken)

    # -- reading --------------------------------------------------------------------------------

    def _from_backend(self, msg: list[bytes]) -> None:
        self._send(self.core.from_backend(msg, time.monotonic()))
        if self.logins.waiting:  # a worker came back or a slot freed: logins may go now
            self._admit_logins(time.monotonic())
        if self._drain_deadline is not None:
            self._nudge()  # maybe the last answer of the drain

    def _from_client_safely(self, msg: list[bytes]) -> None:
        try:
            self._from_client(msg, time.monotonic())
        except Exception:
            # A bug must cost one request, never the front: the client's retry may succeed.
            log.exception("failed to handle a request; going on")

    def _from_subscriber(self, msg: list[bytes]) -> None:
        # XPUB hands every (un)subscription to the application; unread they would pile up.
        self.stats.subscriptions += 1
        if log.isEnabledFor(logging.DEBUG) and msg and msg[0]:
            verb = "subscribe" if msg[0][:1] == b"\x01" else "unsubscribe"
            log.debug("%s %r", verb, msg[0][1:80])

    def _from_client(self, msg: list[bytes], now: float) -> None:
        envelope, body = split_envelope(msg)
        if not envelope:
            # No delimiter: not REQ framing. Answer REQ-style anyway, to the sending peer.
            envelope = [msg[0], b""]
            self._refuse(envelope, "bad_request", "expected [empty frame, request]", now)
            return
        if envelope[0] == TICK_ROUTE:
            return  # a peer posing as the front's own tick route: its replies would vanish
        if len(envelope) > MAX_HOPS + 1:
            self._refuse([msg[0], b""], "bad_request", "too many routing frames", now)
            return
        if len(body) != 1:
            self._refuse(envelope, "bad_request", "expected exactly one request frame", now)
            return
        raw = body[0]
        source = source_of(envelope)  # the connection (behind a relay: the player's)
        if raw == PING_BODY:  # a health check: answered here, with the front's counters
            if self.admission.ping(source, now):
                self._reply(envelope, [self.pong()])
            return
        if self.draining:
            self._reply(envelope, [encode(SHUTTING_DOWN)])
            return
        if len(raw) > MAX_REQUEST_BYTES:
            self._refuse(envelope, "too_large", f"message exceeds {MAX_REQUEST_BYTES} bytes", now)
            return
        if not self.admission.request(source, now):
            self._slow_down(envelope, now)
            return
        try:
            request = decode_request(raw)
        except ProtocolError as exc:
            self._refuse(envelope, exc.code, exc.message, now)
            return
        if isinstance(request, LoginRequest):
            if self.logins.holds(envelope):
                return  # a resend of a login on its way: its answer goes to the same caller
            # The connection's address: behind a relay, the relay's (its players share it).
            address = budgeted_address(self.actions.peer_address(envelope[0]))
            verdict = self.admission.login(source, now, address)
            if verdict is Login.REFUSED:
                self._slow_down(envelope, now)
                return
            job = login_only_job(raw) if verdict is Login.EXISTING_ONLY else request_job(raw)
            if self.logins.offer(envelope, job, self.worker_count):
                self._admit_logins(now)
            else:
                self.admission.return_login(source, now, address, verdict)
                self.stats.busy += 1
                if self.admission.may_answer_error(source, now):
                    self._reply(envelope, [encode(BUSY)])
            return
        if not self.limiter.try_take(request.token, now):
            self._slow_down(envelope, now)
            return
        # Homed by session, not by connection: a client's catch-ups on another connection,
        # and players behind one relay, each go to the worker whose copy knows them.
        out = self.core.from_frontend([*envelope, *request_job(raw)], now, request.token)
        if out.frontend:
            self.stats.busy += 1
        else:
            self.stats.requests += 1
        self._send(out)

    def _admit_logins(self, now: float) -> None:
        if self.pool.full or not self.logins.waiting:
            return  # a full queue would answer "busy" to a login that waited its turn
        for job in self.logins.admit(self.worker_count, now):
            self.stats.requests += 1
            self._send(self.core.from_frontend(job, now))

    def _slow_down(self, envelope: list[bytes], now: float) -> None:
        self.stats.rate_limited += 1
        if self.admission.may_answer_error(source_of(envelope), now):
            text = f"Slow down: at most {self.rate:g} actions per second."
            self._reply(envelope, [encode(ErrorReply(code="rate_limited", message=text))])

    def _refuse(self, envelope: list[bytes], code: ErrorCode, text: str, now: float) -> None:
        self.stats.refused += 1
        if not self.admission.may_answer_error(source_of(envelope), now):
            return  # past the error budget: a flood of bad requests gets no answers
        if self._throttle.allow(now):
            log.warning("refused a request from %s: %s: %s", show_id(envelope[0]), code, text)
        self._reply(envelope, [encode(ErrorReply(code=code, message=text))])

    # -- writing --------------------------------------------------------------------------------

    def _reply(self, envelope: list[bytes], frames: list[bytes]) -> None:
        try:
            self.actions.send_multipart_now([*envelope, *frames])
        except engine.Again:
            pass  # that client is not reading: its retry will ask again

    def _send(self, out: Outbox) -> None:
        for msg in out.frontend:
            self._deliver(msg)
        pending = list(out.backend)
        while pending:
            msg = pending.pop(0)
            try:
                self.backend.send_multipart_now(msg)
            except engine.ZMQError as exc:
                # EAGAIN: not reading; EHOSTUNREACH: gone. Dead either way: re-dispatch.
                if exc.errno not in (engine.EAGAIN, engine.EHOSTUNREACH):
                    raise
                pending.extend(self.core.unroutable(msg[0], time.monotonic()).backend)

    def _deliver(self, msg: list[bytes]) -> None:
        """A worker's answer (or the queue's "busy"): reply to the client, publish the events."""
        envelope, body = split_envelope(msg)
        result = split_result(body)
        is_tick = envelope == [TICK_ROUTE, b""]
        if result is None:
            log.error("dropped a malformed answer from a worker (%d frames)", len(body))
            if not is_tick:
                error = ErrorReply(code="internal", message="Something went wrong.")
                self._reply(envelope, [encode(error)])
            return
        reply, publications = result
        if is_tick:
            self._tick_sent = None
        else:
            if len(body) > 1:  # a one-frame answer is the queue's own "busy"
                self.stats.replies += 1
            self._reply(envelope, reply)
            if self.logins.answered(envelope, time.monotonic()):
                self._admit_logins(time.monotonic())
        for publication in publications:
            # XPUB never blocks: at a slow subscriber's high-water mark it drops, and that
            # subscriber repairs the gap by catch-up.
            self.updates.send_multipart_now([publication])
        self.stats.published += len(publications)

    def _tick(self, now: float) -> None:
        self._tick_due = now + self.tick_interval
        stale = now - self.tick_interval * TICK_STALE_INTERVALS
        if self._tick_sent is not None and self._tick_sent > stale:
            return  # the previous tick is still being worked on
        if self.pool.full or not self.pool.workers:
            return
        self._tick_sent = now
        self.stats.ticks += 1
        self._send(self.core.from_frontend([TICK_ROUTE, b"", *tick_job()], now))


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
