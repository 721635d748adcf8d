"""Prometheus metrics: a private ``/metrics`` endpoint on the front, each worker and each relay.

Off unless asked for (``--metrics-bind`` / ``CROSSROADS_METRICS_BIND``): the endpoint tells
anyone who can reach it how busy the game is, so it belongs on a private interface (loopback,
or a network only the monitoring can reach). ``PORT`` alone binds loopback.

Cost: counters that already exist (the front's :class:`~gameserver.front.FrontStats`, a relay's
stats, the engine's per-socket traffic) are read only when Prometheus scrapes, by collectors. The
one per-action cost is the worker's :class:`ActionMeter`: a dict look-up, a bisect and three
integer additions, with no lock (a worker runs one job at a time) and nothing proportional to the
number of players.

The HTTP side is a few lines of asyncio on the process's own loop, so a scrape reads the
counters between two loop passes (never while the loop is half-way through changing them), and
no extra thread runs. Requests are capped (header size, time, concurrent connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .commands import CommandSet, split_command
from .protocol import (
    Request,
)
from .settings import host_port
from .store.base import Store
from .store.records import session_key
from .store.state import GameState

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from .events import Outcome
    from .front import Front

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'crossroads[metrics]'"
#: Action latency buckets, seconds: a store round trip is ~0.2-2 ms, a login's scrypt ~50 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Whole request head (request line and headers) a scrape may send.
MAX_HEAD_BYTES = 8192
#: A client must send its request within this, and may hold a connection no longer.
REQUEST_TIMEOUT_S = 5.0
#: Concurrent scrapes served; more are closed at once (a scraper needs one).
MAX_CONNECTIONS = 8
#: Verb label for an action whose first word is no command (the label set must stay bounded).
UNKNOWN_VERB = "unknown"


class MetricsError(RuntimeError):
    """Metrics cannot be served (bad bind address, port taken, extra not installed)."""


def require_client() -> None:
    """Raise MetricsError with the install line when prometheus-client is missing."""
    try:
        import prometheus_client  # noqa: F401
    except ModuleNotFoundError:
        raise MetricsError(f"metrics need prometheus-client: {INSTALL_HINT}") from None


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` or ``PORT`` (loopback) -> (host, port)."""
    try:
        return host_port(text)
    except ValueError as exc:
        raise MetricsError(f"metrics bind {exc}") from None


def offset_bind(text: str, offset: int) -> str:
    """The bind for the ``offset``-th sibling process (``serve``'s workers): port + offset, or
    port 0 (any free port) for all when the base is 0."""
    host, port = parse_bind(text)
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port + offset if port else 0}"


# -- the HTTP endpoint ----------------------------------------------------------------------------


class MetricsServer:
    """``GET /metrics`` on the running asyncio loop; ``await start()``, ``await close()``."""

    def __init__(self, bind: str, registry: CollectorRegistry) -> None:
        require_client()
        self.host, self.port = parse_bind(bind)
        self.registry = registry
        self.url = ""
        self._server: asyncio.Server | None = None
        self._open = 0
        self.scrapes = 0

    async def start(self) -> str:
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, limit=MAX_HEAD_BYTES
            )
        except OSError as exc:
            raise MetricsError(f"cannot serve metrics on {self.host}:{self.port}: {exc}") from None
        port = self._server.sockets[0].getsockname()[1]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{port}/metrics"
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= MAX_CONNECTIONS:
            writer.close()
            return
        self._open += 1
        try:
            await asyncio.wait_for(self._answer(reader, writer), REQUEST_TIMEOUT_S)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a slow, broken or oversized request costs its own connection only
        except ValueError:
            pass  # StreamReader's "separator is not found, chunk exceed the limit"
        except Exception:
            log.exception("metrics: failed to answer a scrape")  # a bug costs one scrape
        finally:
            self._open -= 1
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            status, kind, body = "405 Method Not Allowed", "text/plain", b"GET /metrics\n"
        elif parts[1].split("?", 1)[0] != "/metrics":
            status, kind, body = "404 Not Found", "text/plain", b"see /metrics\n"
        else:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            self.scrapes += 1
            status, kind, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        if parts and parts[0] != "HEAD":
            writer.write(body)
        await writer.drain()


# -- collectors -----------------------------------------------------------------------------------


class Collector:
    """A custom collector: ``collect()`` reads live state at scrape time."""

    def __init__(self, collect: Callable[[], Iterable[Any]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Any]:
        return self._collect()

    def describe(self) -> Iterable[Any]:
        return ()  # unchecked at registration: the families are made at scrape time


def new_registry(role: str, instance_id: str) -> CollectorRegistry:
    """A registry with the process's identity (``crossroads_process_info``) and the standard
    process collector (CPU seconds, memory, open fds)."""
    require_client()
    from prometheus_client import CollectorRegistry, ProcessCollector
    from prometheus_client.core import InfoMetricFamily

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)

    def info() -> Iterator[Any]:
        family = InfoMetricFamily("crossroads_process", "which role and process this is")
        family.add_metric([], {"role": role, "id": instance_id})
        yield family

    registry.register(Collector(info))
    return registry


def socket_traffic_family(sockets: dict[str, Any]) -> Iterator[Any]:
    """Counters of the engine's per-socket traffic (``Socket.traffic()``), by socket name."""
    from prometheus_client.core import CounterMetricFamily

    messages = CounterMetricFamily(
        "crossroads_socket_messages", "messages through a socket", labels=["socket", "direction"]
    )
    size = CounterMetricFamily(
        "crossroads_socket_bytes",
        "bytes (all frames) through a socket",
        labels=["socket", "direction"],
    )
    for name, traffic in sockets.items():
        messages.add_metric([name, "in"], traffic.msgs_in)
        messages.add_metric([name, "out"], traffic.msgs_out)
        size.add_metric([name, "in"], traffic.bytes_in)
        size.add_metric([name, "out"], traffic.bytes_out)
    yield messages
    yield size


def front_registry(front: Front, instance_id: str) -> CollectorRegistry:
    """The front's metrics: its request counters, queue, workers and sockets."""
    registry = new_registry("front", instance_id)
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    sockets = {
        "actions": front.actions.traffic(),
        "updates": front.updates.traffic(),
        "workers": front.backend.traffic(),
    }

    def collect() -> Iterator[Any]:
        stats = front.stats
        pool = front.pool
        requests = CounterMetricFamily(
            "crossroads_front_requests",
            "client requests by what the front did with them",
            labels=["outcome"],
        )
        requests.add_metric(["queued"], stats.requests)
        requests.add_metric(["refused"], stats.refused)
        requests.add_metric(["rate_limited"], stats.rate_limited)
        requests.add_metric(["busy"], stats.busy)
        yield requests
        yield CounterMetricFamily(
            "crossroads_front_replies", "worker answers relayed to clients", value=stats.replies
        )
        yield CounterMetricFamily(
            "crossroads_events_published",
            "events published on the state broadcast",
            value=stats.published,
        )
        yield CounterMetricFamily(
            "crossroads_subscription_changes",
            "subscribe and unsubscribe messages on the broadcast",
            value=stats.subscriptions,
        )
        yield CounterMetricFamily("crossroads_ticks", "world ticks queued", value=stats.ticks)
        yield GaugeMetricFamily(
            "crossroads_queue_depth", "requests waiting for a worker", value=len(pool.pending)
        )
        yield GaugeMetricFamily(
            "crossroads_workers_alive",
            "workers heard within their liveness",
            value=len(pool.workers),
        )
        yield GaugeMetricFamily(
            "crossroads_workers_ready", "workers idle, waiting for a job", value=pool.idle_count
        )
        yield GaugeMetricFamily(
            "crossroads_jobs_in_flight",
            "requests queued or held by a worker",
            value=front.in_flight(),
        )
        yield GaugeMetricFamily(
            "crossroads_front_draining", "1 while shutting down", value=int(front.draining)
        )
        yield from socket_traffic_family(sockets)

    registry.register(Collector(collect))
    return registry


# -- the worker's per-action meter ------------------------------------------------------------------


@dataclass
class _VerbTimes:
    """One verb's latency histogram: per-bucket counts (the last is +Inf) and the sum."""

    counts: list[int]
    total: float = 0.0


def outcome_of(outcome: Outcome) -> str:
    """A bounded label for how a request ended."""
    # The ``type`` discriminators, not isinstance: pydantic's models make isinstance slow.
    reply = outcome.reply
    kind = reply.type
    if kind == "error":
        return reply.code  # type: ignore[union-attr]
    if outcome.replayed:
        return "replayed"
    if kind == "reply":
        return "ok" if reply.ok else "refused"  # type: ignore[union-attr]
    return "ok"


class ActionMeter:
    """Requests a worker handled, by verb and outcome, with a latency histogram per verb.

    The verb of an action is its command's key (``n`` and ``north`` are both ``north``), found
    the way the game finds it (a dict look-up, at worst a scan of the command names); other
    requests are ``login``, ``resume``, ``catchup``. O(1) per action; read at scrape time.
    """

    def __init__(self, commands: CommandSet) -> None:
        self.commands = commands
        self.requests: dict[tuple[str, str], int] = {}
        self.times: dict[str, _VerbTimes] = {}
        self.registrations = 0
        self.players_online: int | None = None

    def verb(self, request: Request) -> str:
        if request.type == "action":
            word = split_command(request.text)[0]  # type: ignore[union-attr]
            command = self.commands.find(word) if word else None
            return UNKNOWN_VERB if command is None else command.key
        return request.type

    def observe(self, request: Request, outcome: Outcome, seconds: float) -> str:
        """Count one handled request; returns its verb (for the log line)."""
        verb = self.verb(request)
        key = (verb, outcome_of(outcome))
        self.requests[key] = self.requests.get(key, 0) + 1
        times = self.times.get(verb)
        if times is None:
            times = self.times[verb] = _VerbTimes([0] * (len(LATENCY_BUCKETS) + 1))
        times.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        times.total += seconds
        reply = outcome.reply
        if reply.type == "login_ok" and reply.created:  # type: ignore[union-attr]
            self.registrations += 1
        return verb

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        requests = CounterMetricFamily(
            "crossroads_actions",
            "requests handled, by verb and outcome",
            labels=["verb", "outcome"],
        )
        for (verb, outcome), count in list(self.requests.items()):
            requests.add_metric([verb, outcome], count)
        yield requests
        latency = HistogramMetricFamily(
            "crossroads_action_seconds",
            "time a worker spent on a request (store included), by verb",
            labels=["verb"],
        )
        for verb, times in list(self.times.items()):
            counts = list(times.counts)  # one copy: the buckets and the count agree
            cumulative, running = [], 0
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                running += count
                cumulative.append((repr(bound) if bound != float("inf") else "+Inf", running))
            latency.add_metric([verb], cumulative, sum_value=times.total)
        yield latency
        yield CounterMetricFamily(
            "crossroads_registrations", "new accounts created", value=self.registrations
        )
        if self.players_online is not None:
            yield GaugeMetricFamily(
                "crossroads_players_online",
                "players online (read from the store; every worker reports it)",
                value=self.players_online,
            )


def worker_registry(meter: ActionMeter, instance_id: str) -> CollectorRegistry:
    registry = new_registry("worker", instance_id)
    registry.register(Collector(meter.collect))
    return registry


async def start_metrics(
    bind: str | None, make_registry: Callable[[], CollectorRegistry]
) -> MetricsServer | None:
    """Serve ``make_registry()`` on ``bind`` (None: metrics off); raises MetricsError."""
    if not bind:
        return None
    require_client()
    server = MetricsServer(bind, make_registry())
    await server.start()
    log.info("metrics on %s", server.url)
    return server


#: Logger of the per-request lines (DEBUG: one line per request, with its ids).
action_log = logging.getLogger("gameserver.actions")
#: How often a worker re-reads the number of players online from the store.
ONLINE_REFRESH_S = 5.0


def action_observer(meter: ActionMeter) -> Callable[[Request, Outcome, float], None]:
    """What a worker calls after each request: count it (read if metrics are served) and, at DEBUG,
    log one line with the verb, outcome, time, action id and session reference (a hash prefix
    of the token, never the token)."""

    def observe(request: Request, outcome: Outcome, seconds: float) -> None:
        verb = meter.observe(request, outcome, seconds)
        if not action_log.isEnabledFor(logging.DEBUG):
            return
        result = outcome_of(outcome)
        token = getattr(request, "token", None)
        fields: dict[str, Any] = {
            "verb": verb,
            "outcome": result,
            "ms": round(seconds * 1000, 3),
            "request": request.type,
            "action_id": getattr(request, "action_id", None),
            "session": session_key(token)[:12] if token else None,
            "player": getattr(request, "name", None),
        }
        action_log.debug("%s %s %.1f ms", verb, result, seconds * 1000, extra=fields)

    return observe


def count_online(store: Store) -> int:
    return store.transaction(lambda tx: len(GameState(tx).online_players()))


async def refresh_players_online(meter: ActionMeter, store: Store) -> None:
    """Keep ``meter.players_online`` current (a store read every ONLINE_REFRESH_S, in a
    thread, so a slow store never holds the worker's loop)."""
    while True:
        try:
            meter.players_online = await asyncio.to_thread(count_online, store)
        except Exception as exc:  # a store hiccup must not end the worker: next time
            log.warning("could not count players online: %s", exc)
        await asyncio.sleep(ONLINE_REFRESH_S)
