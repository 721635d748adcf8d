"""The queue side of Paranoid Pirate (ZeroMQ RFC 6), free of I/O: workers and requests.

`WorkerPool` keeps the least-recently-used ready list, heartbeat expiry, which worker holds which
requests, and the bounded queue of pending requests; `QueueCore` wraps it in PPP framing. The
game's front server reuses both; `paranoid_pirate` adds the sockets.

Credit-based flow control (the Guide's chapter 7): a worker may announce a credit with its READY,
``[READY, b"8"]``, and then holds up to that many requests at once (plain RFC 6 READY: one). Each
reply returns one credit. Ready workers take turns, one request each, so a burst spreads over
all of them; a worker that dies gives back every request it held.

Two dispatch policies beyond RFC 6's, each off by default (the game's front uses them): *warm*
prefers the worker that finished last among those holding nothing, so that requests which
travel alone keep one process busy and its caches warm while the rest sleep; *sticky* sends a
client's requests to one home worker while requests wait (see `WorkerPool`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import islice

from .simple_pirate import show_id, split_envelope

log = logging.getLogger("engine.patterns.paranoid_pirate")

#: RFC 6 commands: one-frame messages holding a single byte.
PPP_READY = b"\x01"
PPP_HEARTBEAT = b"\x02"

#: Seconds between heartbeats (the Guide's 1 s): cheap, and a death is seen within seconds.
HEARTBEAT_INTERVAL_S = 1.0
#: Silent intervals before a peer counts as dead (RFC 6 suggests 3-5; 3 reacts fastest).
HEARTBEAT_LIVENESS = 3
#: First reconnect delay after losing the queue: long enough not to hammer a restarting queue.
RECONNECT_INIT_S = 1.0
#: Back-off cap (the Guide's 32 s): a worker never waits longer than this to try again.
RECONNECT_MAX_S = 32.0
#: Default reply body sent to a client when a bounded queue is full (see `max_pending`).
BUSY_REPLY = b"BUSY"
#: Most requests one worker may hold at once, whatever credit it announces.
MAX_CREDIT = 256
#: Sticky dispatch: how far down the pending queue a ready worker looks for a request of a
#: client it is home to. Under load one worker at a time has credit back, and the oldest
#: request's home is another half the time; a short look finds one of its own, at a cost
#: bounded per dispatch.
STICKY_WINDOW = 32
#: Sticky dispatch: times the oldest request may be passed over for younger ones before it
#: goes to whichever worker is ready (its home may be slow, or stuck until it expires).
STICKY_PATIENCE = 64

#: A request as read on the frontend: the client's address stack, b"", then the body.
Request = list[bytes]


# -- the queue's state: workers and requests --------------------------------------------------


@dataclass(slots=True)
class WorkerRecord:
    identity: bytes
    expiry: float
    credit: int = 1  # how many requests it may hold at once
    held: list[Request] = field(default_factory=list)  # re-sent elsewhere if it dies

    @property
    def request(self) -> Request | None:
        """The oldest request it holds (None: it holds none)."""
        return self.held[0] if self.held else None


def _envelope_length(msg: Sequence[bytes]) -> int:
    """Frames up to and including the empty delimiter (1 if there is none)."""
    for i, frame in enumerate(msg):
        if not frame:
            return i + 1
    return 1


class WorkerPool:
    """Ready workers in least-recently-used order, their expiry, and the requests they hold.

    No I/O and no clock of its own: every call that depends on time takes `now` (seconds, any
    monotonic clock). A worker is alive until `now` passes `interval * liveness` after the last
    word from it. Requests wait in `pending` (bounded by `max_pending`, if given) until a worker
    has credit; the requests held by a worker that dies go back to the front of `pending`.
    """

    def __init__(
        self,
        *,
        interval: float = HEARTBEAT_INTERVAL_S,
        liveness: int = HEARTBEAT_LIVENESS,
        max_pending: int | None = None,
        sticky: bool = False,
        warm: bool = False,
    ) -> None:
        """``warm``: a request goes to a ready worker that holds nothing, if there is one,
        and of those to the one that finished a request last; only when every ready worker
        holds some do they take turns. Requests that arrive one at a time then all go to one
        worker, which stays hot in the CPU's caches (waking a process that slept costs several
        times what it then does; README, "The game"), while any overlap still goes to an
        idle worker at once. A worker never given a request goes first, so one just added
        starts at once.

        ``sticky``: while requests wait for credit (the workers are all busy), a worker
        with credit back takes one of its own clients' requests, if one is near the front:
        each client has a *home* worker, by a hash of its address (or of the name its request
        was submitted with: see `submit`). A worker that keeps state per client (a cache of
        its data) then mostly serves the clients it knows when it matters, under load; with
        credit to spare, the workers still take turns, so that a worker just added gets work
        at once. Homes change as workers come and go."""
        if interval <= 0 or liveness < 1:
            raise ValueError("interval must be positive and liveness at least 1")
        self.interval = interval
        self.ttl = interval * liveness
        self.max_pending = max_pending
        self.workers: dict[bytes, WorkerRecord] = {}
        # Workers with spare credit; first = waited longest.
        self.idle: OrderedDict[bytes, None] = OrderedDict()
        self.pending: deque[Request] = deque()
        self.sticky = sticky
        self._homes: list[bytes] = []  # the workers in the order they came (sticky)
        # The client a pending request named at submit (sticky), by the request's identity;
        # dropped when it leaves the queue.
        self._clients: dict[int, Hashable] = {}
        self._head_passed = 0  # times the oldest pending request was passed over (sticky)
        self.warm = warm
        # Live workers holding nothing, the one that finished last at the end (warm); and
        # those never given a request, oldest first.
        self._free: OrderedDict[bytes, None] = OrderedDict()
        self._unused: OrderedDict[bytes, None] = OrderedDict()
        self.requeued = 0  # requests re-dispatched after their worker died (for monitoring)

    # -- workers ---------------------------------------------------------------------------------

    def __contains__(self, identity: object) -> bool:
        return identity in self.workers

    @property
    def idle_count(self) -> int:
        """Workers that can take a request now."""
        return len(self.idle)

    @property
    def held_count(self) -> int:
        """Requests held by workers."""
        return sum(len(record.held) for record in self.workers.values())

    def worker_ready(self, identity: bytes, now: float, credit: int = 1) -> None:
        """READY: the worker starts a fresh conversation, able to hold `credit` requests, and
        joins the back of the ready list.

        A READY from a worker we thought busy means it dropped what it held: re-queue that.
        """
        record = self.workers.get(identity)
        if record is None:
            record = self.workers[identity] = WorkerRecord(identity, now + self.ttl)
            self._homes.append(identity)
            self._unused[identity] = None
        elif record.held:
            self._requeue(record.held)
            record.held = []
        self._free[identity] = None
        self._free.move_to_end(identity, last=False)  # a fresh conversation: not warm
        record.credit = max(1, min(credit, MAX_CREDIT))
        record.expiry = now + self.ttl
        self.idle.pop(identity, None)
        self.idle[identity] = None

    def heartbeat(self, identity: bytes, now: float) -> bool:
        """Any sign of life; False for a worker we do not know (it must send READY first)."""
        record = self.workers.get(identity)
        if record is None:
            return False
        record.expiry = now + self.ttl
        return True

    def next_worker(self) -> bytes | None:
        """Take the longest-waiting ready worker off the ready list (assign it, or re-ready it)."""
        if not self.idle:
            return None
        identity, _ = self.idle.popitem(last=False)
        return identity

    def assign(self, identity: bytes, request: Request) -> None:
        """Record that `identity` (just taken with next_worker) now holds `request`; with
        credit to spare it goes to the back of the ready list, so workers take turns."""
        record = self.workers[identity]
        record.held.append(request)
        self._free.pop(identity, None)
        self._unused.pop(identity, None)
        if len(record.held) < record.credit:
            self.idle[identity] = None

    def holding(self, identity: bytes) -> Request | None:
        """The oldest request `identity` holds."""
        record = self.workers.get(identity)
        return None if record is None else record.request

    def complete(
        self, identity: bytes, now: float, reply: Sequence[bytes] | None = None
    ) -> Request | None:
        """The worker replied: returns the request answered (the one whose envelope `reply`
        starts with; without `reply`, the oldest held), or None for a stale or unasked-for
        reply, to be dropped. The worker gets that credit back."""
        record = self.workers.get(identity)
        if record is None:
            return None  # expired already; its requests went to someone else
        record.expiry = now + self.ttl
        index = 0 if record.held else None
        if reply is not None:
            index = None
            for i, held in enumerate(record.held):
                length = _envelope_length(held)
                if len(reply) >= length and list(reply[:length]) == held[:length]:
                    index = i
                    break
        if index is None:
            return None
        request = record.held.pop(index)
        if identity not in self.idle and len(record.held) < record.credit:
            self.idle[identity] = None
        if not record.held:
            self._free[identity] = None  # at the end: it finished last
        return request

    def remove(self, identity: bytes) -> Request | None:
        """Forget a worker (dead or unreachable); its requests are re-queued, and the oldest
        of them returned."""
        record = self.workers.pop(identity, None)
        self._forget(identity)
        if record is not None:
            self._homes.remove(identity)
        if record is None or not record.held:
            return None
        self._requeue(record.held)
        return record.held[0]

    def purge(self, now: float) -> list[bytes]:
        """Remove every worker whose expiry has passed; returns their identities."""
        expired = [w for w, record in self.workers.items() if record.expiry <= now]
        held: list[Request] = []
        for identity in expired:
            record = self.workers.pop(identity)
            self._forget(identity)
            self._homes.remove(identity)
            held.extend(record.held)
        self._requeue(held)
        return expired

    def _forget(self, identity: bytes) -> None:
        self.idle.pop(identity, None)
        self._free.pop(identity, None)
        self._unused.pop(identity, None)

    def next_expiry(self) -> float | None:
        return min((r.expiry for r in self.workers.values()), default=None)

    # -- requests --------------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        return self.max_pending is not None and len(self.pending) >= self.max_pending

    def submit(self, request: Request, client: Hashable | None = None) -> bool:
        """Queue a new request; False when the bounded queue is full (reply "busy" instead).
        ``client``: whose request it is, for sticky dispatch, when that is not its sender's
        address (one client on several connections, or many behind one relay)."""
        if self.full:
            return False
        self.pending.append(request)
        if client is not None and self.sticky:
            self._clients[id(request)] = client
        return True

    def dispatch(self) -> list[tuple[bytes, Request]]:
        """Pair pending requests with ready workers, oldest of each first."""
        out = []
        idle, pending = self.idle, self.pending
        while idle and pending:
            pick = self._sticky_pick() if self.sticky and len(pending) > 1 else None
            if pick is None:
                identity = self._warm_pick() if self.warm else None
                if identity is None:
                    identity, _ = idle.popitem(last=False)
                else:
                    idle.pop(identity, None)
                request = pending.popleft()
                self._head_passed = 0
            else:
                index, identity = pick
                del idle[identity]
                if index == 0:
                    request = pending.popleft()
                    self._head_passed = 0
                else:
                    request = pending[index]
                    del pending[index]
                    self._head_passed += 1
            if self._clients:
                self._clients.pop(id(request), None)
            self.assign(identity, request)
            out.append((identity, request))
        return out

    def _warm_pick(self) -> bytes | None:
        """A worker never given a request, else the one holding nothing that finished last;
        None if every ready worker holds some. (A worker holding nothing has credit: it is
        on the ready list.)"""
        if self._unused:
            return next(iter(self._unused))
        if self._free:
            return next(reversed(self._free))
        return None

    def _home(self, request: Request) -> bytes:
        client = self._clients.get(id(request))
        if client is None:
            client = request[0] if request else b""
        return self._homes[hash(client) % len(self._homes)]

    def _sticky_pick(self) -> tuple[int, bytes] | None:
        """The first of the oldest STICKY_WINDOW requests whose home is ready, and its home;
        None (the oldest to the longest-waiting worker) if there is none, or if the oldest
        has been passed over STICKY_PATIENCE times already."""
        idle = self.idle
        for index, request in enumerate(islice(self.pending, STICKY_WINDOW)):
            home = self._home(request)
            if home in idle:
                return index, home
            if index == 0 and self._head_passed >= STICKY_PATIENCE:
                return None
        return None

    def _requeue(self, requests: list[Request]) -> None:
        # Back at the front, in their original order: they have waited longest. They were
        # accepted already, so max_pending does not apply to them.
        self.pending.extendleft(reversed(requests))
        self.requeued += len(requests)


# -- the queue's protocol ------------------------------------------------------------------------


def _credit(frames: list[bytes]) -> int | None:
    """The credit a READY announces: ``[READY]`` is 1, ``[READY, b"8"]`` is 8; None if
    ``frames`` is not a READY (a reply always has an envelope, so it has more frames)."""
    if not frames or frames[0] != PPP_READY:
        return None
    if len(frames) == 1:
        return 1
    if len(frames) == 2 and 0 < len(frames[1]) <= 3 and frames[1].isdigit():
        return max(1, int(frames[1]))
    return None


@dataclass(slots=True)
class Outbox:
    """Messages a core wants sent, per socket (each message starts with its routing id)."""

    frontend: list[list[bytes]] = field(default_factory=list)
    backend: list[list[bytes]] = field(default_factory=list)


class QueueCore:
    """RFC 6 queue logic over a WorkerPool: frames and the clock in, an Outbox out.

    Frontend messages are `[client, ..., b"", *body]` from a ROUTER; backend ones are
    `[worker, *frames]` from a ROUTER whose workers are DEALERs. A request goes to the worker
    unchanged (`[worker, client, ..., b"", *body]`), and a reply comes back the same way.
    """

    def __init__(
        self, pool: WorkerPool | None = None, *, busy_reply: Sequence[bytes] = (BUSY_REPLY,)
    ) -> None:
        self.pool = pool if pool is not None else WorkerPool()
        self.busy_reply = [bytes(f) for f in busy_reply]
        self.heartbeat_at = 0.0  # the first tick heartbeats at once

    @property
    def accepting(self) -> bool:
        """Whether to read the frontend now. A bounded queue always reads (and answers "busy"
        when full); an unbounded one reads only what a ready worker can take, leaving the rest
        to socket backpressure as the Guide's queue does."""
        pool = self.pool
        return pool.max_pending is not None or pool.idle_count > len(pool.pending)

    def from_frontend(self, msg: list[bytes], now: float, client: Hashable | None = None) -> Outbox:
        """``client``: see `WorkerPool.submit`."""
        out = Outbox()
        if len(msg) < 2:
            return out
        if self.pool.submit(msg, client):
            log.debug("queued a request (%d pending)", len(self.pool.pending))
            out.backend = self._dispatch()
        else:
            envelope, _ = split_envelope(msg)
            out.frontend.append((envelope or msg[:1]) + self.busy_reply)
            log.debug("busy: queue full, refused a request from %s", show_id(msg[0]))
        return out

    def from_backend(self, msg: list[bytes], now: float) -> Outbox:
        out = Outbox()
        if len(msg) < 2:
            return out
        worker, frames, pool = msg[0], msg[1:], self.pool
        credit = _credit(frames)
        if credit is not None:
            if worker not in pool:
                log.info("worker-ready %s", show_id(worker))
                log.debug("worker %s holds up to %d request(s)", show_id(worker), credit)
            pool.worker_ready(worker, now, credit)
        elif frames == [PPP_HEARTBEAT]:
            if not pool.heartbeat(worker, now):
                log.debug("ignored heartbeat from unknown worker %s", show_id(worker))
        elif len(frames) == 1:
            log.warning("dropped invalid command from worker %s", show_id(worker))
        elif pool.complete(worker, now, frames) is not None:
            out.frontend.append(frames)
        else:
            # Its request was re-sent to another worker, whose reply is the one that counts.
            log.debug("dropped stale reply from worker %s", show_id(worker))
        out.backend = self._dispatch()
        return out

    def tick(self, now: float) -> Outbox:
        """Expire silent workers, heartbeat the live ones when due, re-dispatch."""
        out = Outbox()
        pool = self.pool
        requeued = pool.requeued
        for worker in pool.purge(now):
            log.info("worker-expired %s", show_id(worker))
        if pool.requeued != requeued:
            log.info("requeued %d request(s)", pool.requeued - requeued)
        if now >= self.heartbeat_at:
            self.heartbeat_at = now + pool.interval
            out.backend = [[worker, PPP_HEARTBEAT] for worker in pool.workers]
        out.backend.extend(self._dispatch())
        return out

    def unroutable(self, worker: bytes, now: float) -> Outbox:
        """A send to `worker` failed (it disconnected, or stopped reading): drop it."""
        if worker in self.pool:
            log.info("worker-lost %s", show_id(worker))
            requeued = self.pool.requeued
            if self.pool.remove(worker) is not None:
                log.info("requeued %d request(s)", self.pool.requeued - requeued)
        return Outbox(backend=self._dispatch())

    def timeout(self, now: float) -> float:
        """Seconds until tick() has something to do."""
        due = self.heartbeat_at
        expiry = self.pool.next_expiry()
        if expiry is not None:
            due = min(due, expiry)
        return max(0.0, due - now)

    def _dispatch(self) -> list[list[bytes]]:
        return [[worker, *request] for worker, request in self.pool.dispatch()]
