"""`crossroads bench connections`: many idle players on one front, and fan-out to them.

A local `crossroads serve` is started (2 workers, temp SQLite, no rate limit); this process is
the asyncio load generator. N players each open an action socket (DEALER, one ping so the
connection is really up) and an update socket (SUB). Measured:

* the front's RSS before and after the N players connected (KB per player);
* a probe's ping round trip p99 with the players idle, then while a speaker says things to a
  room all N players follow (the front relays every event to all of them);
* fan-out at 10/100/1000 subscribers: from a ``say`` being sent to its event reaching the
  last (and the median) subscriber of its room.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

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


async def generate(endpoints: dict[str, str], front_pid: int, args: argparse.Namespace) -> Result:
    import engine
    import engine.asyncio as ezmq
    from client.session import GameSession
    from gameserver.broadcast import wire_topic
    from gameserver.topics import room_topic

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
    speaker = GameSession(endpoints["actions"], endpoints["updates"], context=ctx)
    players: list[tuple[Any, Any]] = []
    contexts = [new_context()]
    try:
        await speaker.login("benchspeaker", "bench-password")
        topic = wire_topic(room_topic(speaker.room or "crossroads"))
        prober = ctx.socket(engine.DEALER)
        prober.connect(endpoints["actions"])
        await ping(prober)
        result.rss_before_kb = rss_kb(front_pid)
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
        result.rss_after_kb = rss_kb(front_pid)
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
        await speaker.close()
        for c in [ctx, *contexts]:
            c.destroy(linger=0)


def table(result: Result) -> str:
    n = result.players
    per = (result.rss_after_kb - result.rss_before_kb) / max(n, 1)
    lines = [
        f"players: {n} (each an action DEALER + an update SUB)",
        f"front RSS: {result.rss_before_kb / 1024:.1f} MB before, "
        f"{result.rss_after_kb / 1024:.1f} MB after: {per:.1f} KB per player",
        f"probe ping p50/p99: idle {pct(result.probe_idle_ms, 50):.2f}/"
        f"{pct(result.probe_idle_ms, 99):.2f} ms, broadcasting "
        f"{pct(result.probe_busy_ms, 50):.2f}/{pct(result.probe_busy_ms, 99):.2f} ms",
        "",
        "| subscribers | median arrival p50 ms | last arrival p50 ms | last arrival p99 ms |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for level, (median, last) in sorted(result.fanout.items()):
        lines.append(
            f"| {level} | {pct(median, 50):.1f} | {pct(last, 50):.1f} | {pct(last, 99):.1f} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--players", type=int, default=1000, help="idle players (1000)")
    parser.add_argument(
        "--fanout",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[10, 100, 1000],
        metavar="N,N",
        help="subscriber counts for the fan-out rows (10,100,1000; capped at --players)",
    )
    parser.add_argument("--rounds", type=int, default=20, help="says per fan-out row (20)")
    parser.add_argument("--probes", type=int, default=200, help="probe pings per phase (200)")
    parser.add_argument("--workers", type=int, default=2, help="game workers (2)")
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")


def run_connections(args: argparse.Namespace) -> int:
    from engine import ZMQError
    from loadtest.bench_game import GameBenchError, ServeProcess

    if args.players < 1 or args.rounds < 1 or args.probes < 1:
        print("--players, --rounds and --probes must be positive", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * args.players + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the front inherits it
    with (
        tempfile.TemporaryDirectory(prefix="crossroads-bench-conn-") as tmp,
        (Path(tmp) / "serve.log").open("a") as log,
    ):
        try:
            server = ServeProcess(f"sqlite:///{tmp}/game.sqlite3", args.workers, 0, log)
        except GameBenchError as exc:
            print(f"crossroads bench connections: {exc}", file=sys.stderr)
            return 1
        try:
            result = asyncio.run(generate(server.endpoints, server.process.pid, args))
        except (RuntimeError, TimeoutError, OSError, ZMQError) as exc:
            print(f"crossroads bench connections: {exc}", file=sys.stderr)
            return 1
        finally:
            server.stop()
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    else:
        print(table(result))
    return 0
