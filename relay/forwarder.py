"""The relay itself: XSUB upstream, XPUB downstream, subscriptions forwarded upstream.

Events travel down; the XPUB hands the relay each topic's first subscription and last
cancellation (a departed subscriber's topics included), and the relay writes exactly those to its
XSUB, which sends them upstream and re-sends them all after a reconnect. So the link to the data
centre carries each wanted event once, unwanted topics never, and relays chain into trees with
nothing configured but each one's upstream.

With an actions endpoint the relay is also a ROUTER↔DEALER proxy for the region's requests
(logins, actions, catch-ups): the front sees one peer per relay and replies along the envelope.

Health: the relay counts its live upstream links (ZMTP heartbeats drop a silent one), answers
"health" on its stats socket with "ok" only while they are all up, and keeps a liveness file
fresh meanwhile; so a relay whose upstream died is reported unhealthy, not merely "running".

A relay may serve its region over multicast instead (`--bind epgm://eth0;239.192.7.1:7312`):
one packet then reaches every player on the LAN, whatever their number. No subscription comes
back over PGM, so such a relay takes every event from upstream, and each player's SUB keeps
what it subscribed to; what multicast loses, PGM repairs, and the game's sequence numbers
cover the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import engine
import engine.asyncio as azmq
from engine.utils.monitor import recv_monitor_message
from gameserver.cluster_keys import KeyPair
from gameserver.health import RELAY_HEALTH, RELAY_OK, TOUCH_EVERY_S, Toucher
from gameserver.limits import (
    DEFAULT_MAX_CONNECTIONS,
    SocketLimits,
    limit_bound,
    limit_publisher,
)

from .history import History
from .stats import RelayStats

log = logging.getLogger("relay")

#: Default queue bound per peer (messages), as in libzmq. A slow subscriber loses events past it
#: (PUB/SUB drops rather than blocks, RFC 29) and repairs them by catch-up; 0 means unbounded.
DEFAULT_HWM = 1000
#: Let a stopping relay flush what is queued, but never hang a restart for long.
CLOSE_LINGER_MS = 500
#: Subscription (un)subscribe messages start with this byte; the rest is the topic prefix.
SUBSCRIBE = 1
#: The empty frame between a request's routing envelope and its body (REQ framing).
DELIMITER = b""
#: Upstream links send a ZMTP heartbeat (RFC 37 PING) every second and drop a link that stays
#: silent for three: a hung or unplugged upstream shows as down in seconds, not after the
#: kernel's TCP timeout (minutes), and the relay redials it.
UPSTREAM_HEARTBEAT_IVL_MS = 1000
UPSTREAM_HEARTBEAT_TIMEOUT_MS = 3000
#: Topics one downstream peer may hold: a player needs 3 (world, room, private) and briefly one
#: more while changing rooms; a relay feeding other relays needs more (--max-subscriptions).
PLAYER_SUBSCRIPTIONS = 32
#: Largest request frame the relay's actions port takes (the front's own limit: 64 KiB).
MAX_REQUEST_WIRE_BYTES = 64 * 1024
#: A stats request is a word ("stats", "health").
MAX_STATS_REQUEST_BYTES = 256
#: Multicast binds: one stream for the whole LAN, and no subscriptions travel back.
MULTICAST_SCHEMES = ("pgm://", "epgm://")
#: RATE for a multicast bind, kbit/s. libzmq's default (100) would throttle a busy region to
#: about 100 events a second; 10 Mbit/s is far above a region's event traffic and far below a
#: LAN's capacity.
DEFAULT_MULTICAST_RATE = 10_000


#: A handshake that failed: the link never comes up, and the socket tries again and again.
HANDSHAKE_FAILURES = (
    engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | engine.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | engine.EVENT_HANDSHAKE_FAILED_AUTH
)
#: The monitor events that open and close a usable link, and those that say why one does not
#: open (DISCONNECTED follows a failed handshake too, as in libzmq: the failure first).
LINK_EVENTS = engine.EVENT_HANDSHAKE_SUCCEEDED | engine.EVENT_DISCONNECTED | HANDSHAKE_FAILURES


class LinkCounter:
    """A connecting socket's handshaken links, counted from its monitor socket's events; a
    failing handshake is logged once until a link comes up (the socket retries it every
    RECONNECT_IVL, and nothing else would say why the relay forwards nothing)."""

    def __init__(self, monitor: azmq.Socket, what: str) -> None:
        self.monitor = monitor
        self.what = what
        self.up = 0
        self._warned = False
        #: Failed handshakes whose DISCONNECTED has not come yet: those close no usable link.
        self._failed = 0

    async def run(self) -> None:
        while True:
            self.handle(await recv_monitor_message(self.monitor))

    def handle(self, message: dict) -> None:
        """Count one monitor event."""
        event = message["event"]
        if event == engine.EVENT_HANDSHAKE_SUCCEEDED:
            self.up += 1
            self._warned = False
        elif event == engine.EVENT_DISCONNECTED:
            if self._failed:
                self._failed -= 1
            else:
                self.up = max(0, self.up - 1)
        elif event & HANDSHAKE_FAILURES:
            self._failed += 1
            if not self._warned:
                self._warned = True
                # A connection closed mid-handshake is dialled again; one the upstream
                # refused or spoke another protocol on is not (as in libzmq).
                retried = event == engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                log.warning(
                    "the %s link to %s failed its handshake; %s (does it use the key "
                    "this relay trusts for it: --upstream-key, or its line in the known "
                    "hosts file? a plaintext upstream needs neither)",
                    self.what,
                    message["endpoint"].decode(errors="replace"),
                    "retrying" if retried else "not retried: fix it and restart the relay",
                )


def _size(msg: list[bytes]) -> int:
    return sum(len(frame) for frame in msg)


def _split(msg: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(envelope up to and including the delimiter, body); no delimiter: no envelope."""
    try:
        i = msg.index(DELIMITER)
    except ValueError:
        return [], msg
    return msg[: i + 1], msg[i + 1 :]


class Relay:
    """One regional relay. Create it inside the running event loop; `await run()`."""

    def __init__(
        self,
        upstream: str,
        bind: str,
        *,
        actions_upstream: str | None = None,
        actions_bind: str | None = None,
        stats_bind: str | None = None,
        stats_interval: float = 0.0,
        hwm: int = DEFAULT_HWM,
        history: int = 0,
        health_file: str | None = None,
        multicast_rate: int = DEFAULT_MULTICAST_RATE,
        multicast_hops: int = 1,
        upstream_key: bytes | None = None,
        key: KeyPair | None = None,
        max_subscriptions: int = PLAYER_SUBSCRIPTIONS,
    ) -> None:
        if (actions_upstream is None) != (actions_bind is None):
            raise ValueError("actions need both an upstream and a bind endpoint")
        self.context = azmq.Context()
        self.stats = RelayStats(upstream=upstream)
        self.stats_interval = stats_interval
        self.topics: set[bytes] = set()
        self.history = History(history) if history > 0 else None
        self._sockets: list[azmq.Socket] = []
        self.health_file = Toucher(health_file)
        #: CURVE: the front's (or parent relay's) key upstream, this relay's own downstream.
        self.upstream_key = upstream_key
        self.key = key
        self.up = self._socket(engine.XSUB, hwm, upstream=True)
        self.down = self._socket(engine.XPUB, hwm, upstream=False)
        self.multicast = bind.startswith(MULTICAST_SCHEMES)
        if self.multicast:
            self.down.rate = multicast_rate
            self.down.multicast_hops = multicast_hops
        if not self.multicast:
            # gameserver/limits.py. Few topics per player: what one player subscribes, the
            # relay subscribes upstream, where the front caps the relay's topics as a whole.
            limit_publisher(self.down, SocketLimits(max_subscriptions=max_subscriptions))
        self.up_links = self._watch_upstream(self.up, "upstream events")
        self.up.connect(upstream)
        self.endpoint = self._bind(self.down, bind, "--bind")
        self.stats.downstream = self.endpoint
        self.actions_endpoint: str | None = None
        self.stats_endpoint: str | None = None
        self.router: azmq.Socket | None = None
        self.dealer: azmq.Socket | None = None
        self.rep: azmq.Socket | None = None
        self.actions_links: LinkCounter | None = None
        if actions_upstream is not None and actions_bind is not None:
            self.router = self._socket(engine.ROUTER, hwm, upstream=False)
            self.dealer = self._socket(engine.DEALER, hwm, upstream=True)
            limit_bound(self.router, MAX_REQUEST_WIRE_BYTES, DEFAULT_MAX_CONNECTIONS)
            self.actions_links = self._watch_upstream(self.dealer, "upstream actions")
            self.dealer.connect(actions_upstream)
            self.actions_endpoint = self._bind(self.router, actions_bind, "--actions-bind")
        if stats_bind is not None:
            self.rep = self._socket(engine.REP, hwm)
            limit_bound(self.rep, MAX_STATS_REQUEST_BYTES, DEFAULT_MAX_CONNECTIONS)
            self.stats_endpoint = self._bind(self.rep, stats_bind, "--stats-bind")

    def _bind(self, sock: azmq.Socket, endpoint: str, option: str) -> str:
        """Bind ``sock``; if that fails, close everything made so far and raise ValueError
        naming the option and the endpoint (the relay binds up to three)."""
        try:
            return sock.bind(endpoint)
        except engine.ZMQError as exc:
            self.close(linger=0)
            raise ValueError(f"cannot bind {option} {endpoint}: {exc.strerror}") from None

    def _socket(self, kind: int, hwm: int, upstream: bool | None = None) -> azmq.Socket:
        sock = self.context.socket(kind)
        sock.sndhwm = hwm
        sock.rcvhwm = hwm
        if upstream is True and self.upstream_key is not None:
            sock.curve_serverkey = self.upstream_key
            sock.curve_publickey, sock.curve_secretkey = engine.curve_keypair()
        elif upstream is False and self.key is not None:
            # Any player key is admitted (no ZAP handler here): passwords do the rest.
            sock.curve_server = 1
            sock.curve_secretkey = self.key.secret
            sock.curve_publickey = self.key.public
        self._sockets.append(sock)
        return sock

    def _watch_upstream(self, sock: azmq.Socket, what: str) -> LinkCounter:
        """Heartbeats on an upstream socket, and a count of its live links (call before
        connecting, so the first handshake is seen)."""
        sock.heartbeat_ivl = UPSTREAM_HEARTBEAT_IVL_MS
        sock.heartbeat_timeout = UPSTREAM_HEARTBEAT_TIMEOUT_MS
        monitor = sock.get_monitor_socket(LINK_EVENTS)
        self._sockets.append(monitor)
        return LinkCounter(monitor, what)

    def unhealthy(self) -> str | None:
        """Why the relay cannot serve its region now, or None if it can."""
        if not self.up_links.up:
            return "the upstream events link is down"
        if self.actions_links is not None and not self.actions_links.up:
            return "the upstream actions link is down"
        return None

    def snapshot(self) -> dict[str, object]:
        """Current counters, live values refreshed."""
        # The subscriber count is the XPUB's live peer list: read-only, no public accessor.
        self.stats.subscribers = sum(1 for p in self.down._core.pipes if not p.closed)
        self.stats.upstream_up = bool(self.up_links.up)
        self.stats.actions_upstream_up = (
            None if self.actions_links is None else bool(self.actions_links.up)
        )
        self.stats.topics_upstream = len(self.topics)
        if self.history is not None:
            self.stats.catchups_local = self.history.answered
            self.stats.catchups_forwarded = self.history.forwarded
        return self.stats.as_dict()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Forward until ``stop`` is set (or forever)."""
        stop = stop or asyncio.Event()
        if self.multicast:  # every event, once: the players on the LAN filter
            self.topics.add(b"")
            await self.up.send(bytes([SUBSCRIBE]))
        jobs = [self._events(), self._subscriptions(), self.up_links.run()]
        if self.actions_links is not None:
            jobs.append(self.actions_links.run())
        if self.router is not None and self.dealer is not None:
            jobs += [self._actions_up(self.router, self.dealer)]
            jobs += [self._actions_down(self.dealer, self.router)]
        if self.rep is not None:
            jobs.append(self._serve_stats(self.rep))
        if self.stats_interval > 0:
            jobs.append(self._log_stats())
        if self.health_file.path is not None:
            jobs.append(self._keep_health_file())
        tasks = [asyncio.create_task(job) for job in jobs]
        waiter = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter:
                    task.result()  # a forwarding loop only ends by raising: surface it
        finally:
            for task in [waiter, *tasks]:
                task.cancel()
            for task in [waiter, *tasks]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _events(self) -> None:
        stats = self.stats
        subscribers = self.down._core.subscribers  # read-only peek: who gets this message
        history = self.history
        while True:
            msg = await self.up.recv_multipart()
            if history is not None:
                history.record(msg)
            size = _size(msg)
            stats.messages_in += 1
            stats.bytes_in += size
            stats.last_event, stats.last_event_at = msg, time.time()  # read by the lag metric
            fanout = len(subscribers.match(msg[0]))
            await self.down.send_multipart(msg, engine.DONTWAIT)  # XPUB never blocks
            stats.messages_out += fanout
            stats.bytes_out += size * fanout

    async def _subscriptions(self) -> None:
        while True:
            msg = await self.down.recv_multipart()
            first = msg[0] if msg else b""
            if len(msg) != 1 or not first or first[0] > SUBSCRIBE:
                continue  # not a subscription: nothing upstream understands it
            topic = first[1:]
            if first[0] == SUBSCRIBE:
                self.topics.add(topic)
            else:
                self.topics.discard(topic)
                if self.history is not None:
                    self.history.forget(topic)
            log.debug("%s %r upstream", "subscribe" if first[0] else "cancel", topic[:80])
            await self.up.send_multipart(msg)

    async def _actions_up(self, router: azmq.Socket, dealer: azmq.Socket) -> None:
        while True:
            msg = await router.recv_multipart()
            if self.history is not None:
                envelope, body = _split(msg)
                local = self.history.answer(body) if envelope else None
                if local is not None:
                    with contextlib.suppress(engine.Again):  # saturated: the client retries
                        await router.send_multipart([*envelope, local], engine.DONTWAIT)
                    continue
            try:
                await dealer.send_multipart(msg, engine.DONTWAIT)
                self.stats.actions_requests += 1
            except engine.Again:
                # The front is unreachable or saturated: the client's Lazy Pirate retry covers it.
                log.warning("dropped an action: upstream actions queue full")

    async def _actions_down(self, dealer: azmq.Socket, router: azmq.Socket) -> None:
        while True:
            msg = await dealer.recv_multipart()
            if self.history is not None:
                self.history.note_marks(_split(msg)[1])
            try:
                await router.send_multipart(msg, engine.DONTWAIT)
                self.stats.actions_replies += 1
            except engine.Again:
                log.warning("dropped a reply: the player's connection is saturated")

    async def _serve_stats(self, rep: azmq.Socket) -> None:
        while True:
            request = await rep.recv_multipart()
            if request == [RELAY_HEALTH]:
                problem = self.unhealthy()
                await rep.send(RELAY_OK if problem is None else problem.encode())
            else:
                await rep.send(json.dumps(self.snapshot()).encode())

    async def _keep_health_file(self) -> None:
        while True:
            if self.unhealthy() is None:
                self.health_file.beat(time.monotonic())
            await asyncio.sleep(TOUCH_EVERY_S)

    async def _log_stats(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            self.snapshot()
            log.info("%s", self.stats.summary())

    def close(self, linger: int = CLOSE_LINGER_MS) -> None:
        for sock in self._sockets:
            sock.close(linger)
        self.context.term()
