"""`crossroads bench connections`: many idle players on one front, and fan-out to them.

A local `crossroads serve` is started (2 workers, temp SQLite, no rate limit); this process is
the asyncio load generator. N players each open an action socket (DEALER, one ping so the
connection is really up) and an update socket (SUB). Measured:

* the front's RSS before and after the N players connected (KB per player);
* a probe's ping round trip p99 with the players idle, then while a speaker says things to a
  room all N players follow (the front relays every event to all of them);
* fan-out at 10/100/1000 subscribers: from a ``say`` being sent to its event reaching the
  last (and the median) subscriber of its room.

When pyzmq is installed the same players, probes and says then run against the reference, a
libzmq relay of the same shape that does no game work (`loadtest.bench_connections_ref`), and
the table gives both side by side with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gameserver.cli_numbers import count_list, positive
from loadtest.bench_subscribers import have_pyzmq

ROUND_TIMEOUT_S = 10.0
WARM_TIMEOUT_S = 15.0
PLAYERS_PER_CONTEXT = 500


@dataclass
class Result:
    players: int
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    probe_idle_ms: list[float] = field(default_factory=list)
    probe_busy_ms: list[float] = field(default_factory=list)
    fanout: dict[int, tuple[list[float], list[float]]] = field(default_factory=dict)


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` from /proc (0 if unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def ping(dealer: Any, timeout: float = ROUND_TIMEOUT_S) -> float:
    from gameserver.protocol import PING_BODY  # loaded with the benchmark, not with --help

    start = time.perf_counter()
    await dealer.send_multipart([b"", PING_BODY])
    await asyncio.wait_for(dealer.recv_multipart(), timeout)
    return (time.perf_counter() - start) * 1000


async def probe(dealer: Any, count: int) -> list[float]:
    return [await ping(dealer) for _ in range(count)]


async def hear(sub: Any, token: str) -> float:
    """Read ``sub`` until the say carrying ``token`` arrives; returns the arrival time."""
    needle = token.encode()
    while True:
        frames = await sub.recv_multipart()
        if len(frames) == 1 and needle in frames[0]:
            return time.perf_counter()


async def game_speaker(context: Any, endpoints: dict[str, str]) -> tuple[Any, bytes]:
    """A logged-in player of the front, and the wire topic of its room."""
    from client.session import GameSession
    from gameserver.broadcast import wire_topic
    from gameserver.topics import room_topic

    speaker = GameSession(endpoints["actions"], endpoints["updates"], context=context)
    try:
        await speaker.login("benchspeaker", "bench-password")
    except BaseException:
        await speaker.close()
        raise
    return speaker, wire_topic(room_topic(speaker.room or "crossroads"))


async def reference_speaker(context: Any, endpoints: dict[str, str]) -> tuple[Any, bytes]:
    """The reference relay's speaker, and the topic it publishes under."""
    from loadtest.bench_connections_ref import REFERENCE_TOPIC, ReferenceSpeaker

    return ReferenceSpeaker(context, endpoints["actions"]), REFERENCE_TOPIC


Speaker = Callable[[Any, dict[str, str]], Awaitable[tuple[Any, bytes]]]


async def generate(
    endpoints: dict[str, str], measured_pid: int, args: argparse.Namespace, speaker_for: Speaker
) -> Result:
    """Connect the players to ``endpoints`` (a front, or the reference relay: ``speaker_for``
    makes the speaker whose says they hear) and measure; ``measured_pid`` is whose RSS counts."""
    import engine
    import engine.asyncio as ezmq

    def new_context() -> Any:
        """A context whose sockets are CURVE clients of the front (its key from its banner):
        each player's connection pays its handshake, as against a default front."""
        context = ezmq.Context()
        if "key" in endpoints:
            context.curve_serverkey = endpoints["key"].encode()
            context.curve_publickey, context.curve_secretkey = engine.curve_keypair()
        return context

    result = Result(args.players)
    ctx = new_context()
    players: list[tuple[Any, Any]] = []
    contexts = [new_context()]
    speaker = None
    try:
        speaker, topic = await speaker_for(ctx, endpoints)
        prober = ctx.socket(engine.DEALER)
        prober.connect(endpoints["actions"])
        await ping(prober)
        result.rss_before_kb = rss_kb(measured_pid)
        for i in range(args.players):
            if i and i % PLAYERS_PER_CONTEXT == 0:  # a context holds at most 1023 sockets
                contexts.append(new_context())
            dealer = contexts[-1].socket(engine.DEALER)
            sub = contexts[-1].socket(engine.SUB)
            dealer.connect(endpoints["actions"])
            sub.connect(endpoints["updates"])
            players.append((dealer, sub))
        for start in range(0, len(players), 100):  # all connected for real, 100 at a time
            await asyncio.gather(*(ping(d) for d, _ in players[start : start + 100]))
        result.rss_after_kb = rss_kb(measured_pid)
        result.probe_idle_ms = await probe(prober, args.probes)

        async def say_heard(subs: list[Any], timeout: float) -> tuple[float, list[float]]:
            token = secrets.token_hex(6)
            waits = [asyncio.create_task(hear(s, token)) for s in subs]
            sent = time.perf_counter()
            await speaker.act(f"say {token}")
            done, pending = await asyncio.wait(waits, timeout=timeout)
            for task in pending:
                task.cancel()
            return sent, [t.result() for t in done]

        subscribed = 0
        for level in sorted({min(n, args.players) for n in args.fanout}):
            for _, sub in players[subscribed:level]:
                sub.subscribe(topic)
            subscribed = level
            subs = [s for _, s in players[:level]]
            deadline = time.monotonic() + WARM_TIMEOUT_S  # until every subscription took effect
            while len((await say_heard(subs, 1.0))[1]) < level:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not all {level} subscribers hear the room")
            last, median = [], []
            for _ in range(args.rounds):
                sent, arrivals = await say_heard(subs, ROUND_TIMEOUT_S)
                if len(arrivals) < level:
                    raise RuntimeError(f"{level - len(arrivals)} subscriber(s) missed a say")
                delays = sorted((t - sent) * 1000 for t in arrivals)
                last.append(delays[-1])
                median.append(delays[len(delays) // 2])
            result.fanout[level] = (median, last)

        # Probe while the speaker keeps talking to everyone who follows the room.
        subs = [s for _, s in players[:subscribed]]
        stop = asyncio.Event()

        async def drain(sub: Any) -> None:
            while not stop.is_set():
                await sub.recv_multipart()

        async def talk() -> None:
            while not stop.is_set():
                await speaker.act(f"say {secrets.token_hex(6)}")

        background = [asyncio.create_task(drain(s)) for s in subs]
        background.append(asyncio.create_task(talk()))
        result.probe_busy_ms = await probe(prober, args.probes)
        stop.set()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        prober.close(linger=0)
        return result
    finally:
        for dealer, sub in players:
            dealer.close(linger=0)
            sub.close(linger=0)
        if speaker is not None:
            await speaker.close()
        for c in [ctx, *contexts]:
            c.destroy(linger=0)


def _ratio(ours: float, theirs: float | None) -> str:
    if theirs is None or theirs != theirs or ours != ours:  # no reference, or NaN
        return "-"
    return f"{ours / theirs:.2f}x" if theirs > 0 else "-"


def _rows(result: Result) -> list[tuple[str, float]]:
    """Each measure of one run, named as the table prints it."""
    rows = [
        (
            "RSS per player, KB",
            (result.rss_after_kb - result.rss_before_kb) / max(result.players, 1),
        ),
        ("probe ping idle, p50 ms", pct(result.probe_idle_ms, 50)),
        ("probe ping idle, p99 ms", pct(result.probe_idle_ms, 99)),
        ("probe ping broadcasting, p50 ms", pct(result.probe_busy_ms, 50)),
        ("probe ping broadcasting, p99 ms", pct(result.probe_busy_ms, 99)),
    ]
    for level, (median, last) in sorted(result.fanout.items()):
        rows.append((f"fan-out to {level}: median arrival p50 ms", pct(median, 50)))
        rows.append((f"fan-out to {level}: last arrival p50 ms", pct(last, 50)))
        rows.append((f"fan-out to {level}: last arrival p99 ms", pct(last, 99)))
    return rows


def table(result: Result, reference: Result | None = None, reference_kind: str = "") -> str:
    """The front's figures, and the reference's beside them with the ratio when it ran."""
    theirs = dict(_rows(reference)) if reference is not None else {}
    lines = [
        f"players: {result.players} (each an action DEALER + an update SUB)",
        f"front RSS: {result.rss_before_kb / 1024:.1f} MB before, "
        f"{result.rss_after_kb / 1024:.1f} MB after",
        f"reference: {reference_kind}"
        + (
            f" (RSS {reference.rss_before_kb / 1024:.1f} MB before, "
            f"{reference.rss_after_kb / 1024:.1f} MB after)"
            if reference is not None
            else ""
        ),
        "",
        "| measure | Crossroads front | reference | front/reference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, ours in _rows(result):
        other = theirs.get(name)
        shown = "-" if other is None else f"{other:.2f}"
        lines.append(f"| {name} | {ours:.2f} | {shown} | {_ratio(ours, other)} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    count = positive(int)
    parser.add_argument("--players", type=count, default=1000, help="idle players (1000)")
    parser.add_argument(
        "--fanout",
        type=count_list,
        default=[10, 100, 1000],
        metavar="N,N",
        help="subscriber counts for the fan-out rows (10,100,1000; capped at --players)",
    )
    parser.add_argument("--rounds", type=count, default=20, help="says per fan-out row (20)")
    parser.add_argument("--probes", type=count, default=200, help="probe pings per phase (200)")
    parser.add_argument("--workers", type=count, default=2, help="game workers (2)")
    parser.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="skip the reference (a libzmq relay of the front's shape; needs pyzmq)",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")


class BenchError(Exception):
    """What stopped a run, said in one line."""


def _front(args: argparse.Namespace) -> Result:
    """The measures against a fresh local `crossroads serve`."""
    from loadtest.bench_game import GameBenchError, ServeProcess

    with (
        tempfile.TemporaryDirectory(prefix="crossroads-bench-conn-") as tmp,
        (Path(tmp) / "serve.log").open("a") as log,
    ):
        try:
            server = ServeProcess(f"sqlite:///{tmp}/game.sqlite3", args.workers, 0, log)
        except GameBenchError as exc:
            raise BenchError(str(exc)) from None
        try:
            return _measure(server.endpoints, server.process.pid, args, game_speaker)
        finally:
            server.stop()


def _reference(args: argparse.Namespace) -> Result:
    """The same measures against the libzmq relay."""
    from loadtest.bench_connections_ref import ReferenceRelay

    try:
        relay = ReferenceRelay()
    except RuntimeError as exc:
        raise BenchError(str(exc)) from None
    try:
        return _measure(relay.endpoints, relay.pid, args, reference_speaker)
    finally:
        relay.close()


def _measure(
    endpoints: dict[str, str], pid: int, args: argparse.Namespace, speaker_for: Speaker
) -> Result:
    from engine import ZMQError

    try:
        return asyncio.run(generate(endpoints, pid, args, speaker_for))
    except (RuntimeError, TimeoutError, OSError, ZMQError) as exc:
        raise BenchError(str(exc)) from None


def run_connections(args: argparse.Namespace) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.players + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the front inherits it
    reference = None
    measure_reference = args.reference and have_pyzmq()
    if measure_reference:
        from loadtest.bench_connections_ref import ReferenceRelay

        kind = ReferenceRelay.kind
    elif args.reference:
        kind = "none (pyzmq is not installed: pip install pyzmq)"
    else:
        kind = "skipped (--no-reference)"
    try:
        print("front: connecting players and measuring ...", file=sys.stderr)
        result = _front(args)
        if measure_reference:
            print("reference: the same against a libzmq relay ...", file=sys.stderr)
            reference = _reference(args)
    except BenchError as exc:
        print(f"crossroads bench connections: {exc}", file=sys.stderr)
        return 1
    if args.json:
        report = {"front": result, "reference": reference, "reference_kind": kind}
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    else:
        print(table(result, reference, kind))
    return 0
