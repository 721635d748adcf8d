"""`crossroads bench`: the engine against pyzmq, in the spirit of libzmq's local_thr/local_lat.

Each measurement runs its two ends in two spawned processes (loadtest.bench_workers): PUSH->PULL
throughput timed on the receiver, REQ->REP round trips timed on the requester, PUB fan-out to
10 and 100 SUBs timed on the subscribers' side, and a ROUTER's memory per accepted connection
(loadtest.bench_workers). The engine and pyzmq run side by side in one
invocation and one table, each figure the median of `--rounds` rounds (interleaved, so both
sides share the machine's moods). pyzmq is optional: it is imported only to check it is there,
and only the children that need it import it for real. `--profile` counts Python calls and
thread wake-ups instead (loadtest.bench_probe).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameserver.cli_numbers import positive
from loadtest import (
    bench_cold,
    bench_connections,
    bench_game,
    bench_health,
    bench_inproc,
    bench_metrics,
    bench_players,
    bench_profile,
    bench_storm,
)
from loadtest.bench_pair import (
    IMPLS,
    NO_PYZMQ,
    NO_SYNC_FACE,
    Run,
    measure,
    progress,
    render_table,
)
from loadtest.bench_workers import MEM_CONNECTIONS

__all__ = ["NO_PYZMQ", "NO_SYNC_FACE", "main"]

FACES = ("sync", "asyncio")
MECHANISMS = ("null", "curve")
BENCHES = ("thr", "lat", "fan", "evt", "mem")
#: Fan-out rows: a publisher to this many subscribers (in one process).
DEFAULT_SUBSCRIBERS = (10, 100)
#: The event row: one PUB to this many asyncio SUBs, as a game room's event (not in "all").
EVENT_SUBSCRIBERS = 1000
#: Events per event run (each waits until every subscriber has the one before).
EVENT_COUNT = 20


# -- how much to run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    msgs: int  # throughput messages for small sizes
    budget_bytes: int  # caps bytes moved per throughput run, so big sizes send fewer messages
    round_trips: int  # timed latency round trips
    warmup: int  # untimed round trips first

    def for_size(self, size: int) -> int:
        return max(2, min(self.msgs, self.budget_bytes // max(size, 1)))


PRESETS = {
    "small": Counts(2_000, 500 * 1024, 200, 50),
    "default": Counts(200_000, 50_000 * 1024, 5_000, 1_000),
    "large": Counts(1_000_000, 250_000 * 1024, 25_000, 2_000),
}


def parse_count(text: str) -> Counts:
    """A preset name, or N small messages with the other counts scaled as in the defaults."""
    if text in PRESETS:
        return PRESETS[text]
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or one of {', '.join(PRESETS)}")
    if n < 2:
        raise argparse.ArgumentTypeError("--count must be at least 2")
    return Counts(n, n * 256, max(10, n // 40), max(10, n // 200))


def parse_faces(text: str) -> list[str]:
    faces = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in faces if f not in FACES]
    if bad or not faces:
        raise argparse.ArgumentTypeError(f"faces are a comma list of {','.join(FACES)}")
    return list(dict.fromkeys(faces))


# -- the plan and the report ----------------------------------------------------------------------


def plan(
    which: str,
    sizes: list[int],
    faces: list[str],
    counts: Counts,
    subscribers: tuple[int, ...] = DEFAULT_SUBSCRIBERS,
    mechanism: str = "null",
) -> list[Run]:
    runs = _plan(which, sizes, faces, counts, subscribers)
    for run in runs:
        run.mechanism = mechanism
    return runs


def _plan(
    which: str,
    sizes: list[int],
    faces: list[str],
    counts: Counts,
    subscribers: tuple[int, ...],
) -> list[Run]:
    runs: list[Run] = []
    if which in ("thr", "all"):
        for size in sizes:
            for face in faces:
                for impl in IMPLS:
                    runs.append(Run("thr", size, face, impl, counts.for_size(size)))
    size = min(sizes)  # latency and fan-out with the smallest size, like local_lat's usual runs
    if which in ("lat", "all"):
        for face in faces:
            for impl in IMPLS:
                runs.append(Run("lat", size, face, impl, counts.round_trips, counts.warmup))
    if which == "evt":
        # A game's room event: latency to the last of many asyncio subscribers.
        peers = max(subscribers) if subscribers != DEFAULT_SUBSCRIBERS else EVENT_SUBSCRIBERS
        for impl in IMPLS:
            runs.append(Run("evt", size, "asyncio", impl, EVENT_COUNT, peers=peers))
    if which in ("fan", "all"):
        for peers in subscribers:
            # The same number of deliveries in all, however many subscribers share them.
            count = max(2, counts.for_size(size) // peers)
            for face in faces:
                for impl in IMPLS:
                    runs.append(Run("fan", size, face, impl, count, peers=peers))
    if which in ("mem", "all"):
        for face in faces:
            for impl in IMPLS:
                runs.append(Run("mem", 0, face, impl, MEM_CONNECTIONS))
    return runs


#: (bench, metric key, row label suffix, lower is better)
METRICS = (
    ("thr", "msg_per_s", "msg/s", False),
    ("fan", "msg_per_s", "msg/s", False),
    ("lat", "mean_us", "mean µs (lower is better)", True),
    ("lat", "p50_us", "p50 µs (lower is better)", True),
    ("lat", "p99_us", "p99 µs (lower is better)", True),
    ("evt", "p50_ms", "to the last SUB, p50 ms (lower is better)", True),
    ("evt", "max_ms", "to the last SUB, max ms (lower is better)", True),
    ("mem", "kib_per_conn", "KiB per accepted connection (lower is better)", True),
)


def rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per benchmark, face and metric, with the engine and pyzmq side by side."""
    by_key = {(r.bench, r.size, r.peers, r.face, r.impl): r for r in runs}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int, int, str]] = set()
    for r in runs:
        key = (r.bench, r.size, r.peers, r.face)
        if key in seen:
            continue
        seen.add(key)
        for bench, metric, label, lower in METRICS:
            if bench != r.bench:
                continue
            eng, ref = by_key.get((*key, "engine")), by_key.get((*key, "pyzmq"))
            ev, pv = _value(eng, metric), _value(ref, metric)
            out.append(
                {
                    "benchmark": f"{r.label} {label}",
                    "bench": r.bench,
                    "size": r.size,
                    "peers": r.peers,
                    "metric": metric,
                    "face": r.face,
                    "engine": ev,
                    "pyzmq": pv,
                    "engine_note": _note(eng),
                    "pyzmq_note": _note(ref),
                    "ratio": ev / pv if ev is not None and pv else None,
                    "lower_is_better": lower,
                }
            )
    return out


def _value(run: Run | None, metric: str) -> float | None:
    return run.metrics.get(metric) if run is not None and run.status == "ok" else None


def _note(run: Run | None) -> str:
    if run is None:
        return "-"
    return "error" if run.status == "error" else run.note


def fmt_value(value: float | None, note: str) -> str:
    if value is None:
        return note or "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def table(table_rows: list[dict[str, Any]]) -> str:
    header = ("benchmark", "face", "engine", "pyzmq", "engine/pyzmq")
    body = [
        (
            row["benchmark"],
            row["face"],
            fmt_value(row["engine"], row["engine_note"]),
            fmt_value(row["pyzmq"], row["pyzmq_note"]),
            "-" if row["ratio"] is None else f"{row['ratio']:.2f}x",
        )
        for row in table_rows
    ]
    return render_table(header, body, left=2)


# -- the command ----------------------------------------------------------------------------------


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Benchmarks. With no suite, runs `engine` with its defaults.",
    )
    suites = parser.add_subparsers(dest="suite", metavar="SUITE")
    eng = suites.add_parser(
        "engine",
        help="engine vs pyzmq: PUSH/PULL throughput, REQ/REP latency, PUB fan-out",
        description=(
            "Engine vs pyzmq, each end in its own process, median of --rounds rounds. "
            "thr: PUSH->PULL, timed on the receiver from first to last message. "
            "lat: REQ->REP round trips after a warm-up. fan: one PUB to N SUBs (in one "
            "process, read one after the other), timed from the first to the last delivery. "
            "evt (not in all): one PUB to 1000 asyncio SUBs (or --subscribers N), 20 events "
            "one after the other, each timed from its send to its delivery on the last SUB. "
            "mem: a ROUTER's resident set growth per accepted connection, 1000 DEALERs each "
            "sending one message. "
            "--profile: Python calls and thread wake-ups per message instead of speed."
        ),
    )
    eng.add_argument(
        "which",
        nargs="?",
        choices=(*BENCHES, "all"),
        default="all",
        help=(
            "throughput, latency, fan-out, event latency, memory per connection, or all but "
            "evt (default: all)"
        ),
    )
    eng.add_argument(
        "--count",
        type=parse_count,
        default=PRESETS["default"],
        metavar="N|PRESET",
        help=(
            "small, default or large; or N messages per throughput run (fewer for big sizes: "
            "at most N*256 bytes), N/40 latency round trips after N/200 warm-up. "
            "default: 200000 (50000 at 1 KiB), 5000 round trips after 1000"
        ),
    )
    eng.add_argument(
        "--size",
        type=positive(int),
        nargs="+",
        default=[16, 1024],
        metavar="BYTES",
        help="message sizes for throughput; latency uses the smallest (default: 16 1024)",
    )
    eng.add_argument("--transport", choices=("tcp", "ipc"), default="tcp")
    eng.add_argument(
        "--mechanism",
        choices=MECHANISMS,
        default="null",
        help=(
            "security on every connection: null (none), or curve (the binding end is the "
            "CURVE server; needs PyNaCl for the engine) (default: null)"
        ),
    )
    eng.add_argument(
        "--faces",
        type=parse_faces,
        default=list(FACES),
        metavar="LIST",
        help="comma list of sync,asyncio (default: both)",
    )
    eng.add_argument(
        "--timeout",
        type=positive(float),
        default=60.0,
        metavar="SECONDS",
        help="give up on one measurement after this long (default: 60)",
    )
    eng.add_argument(
        "--rounds",
        type=positive(int),
        default=3,
        metavar="N",
        help="rounds per measurement; the table shows their median (default: 3)",
    )
    eng.add_argument(
        "--subscribers",
        type=positive(int),
        nargs="+",
        default=list(DEFAULT_SUBSCRIBERS),
        metavar="N",
        help="subscriber counts for fan-out (default: 10 100)",
    )
    eng.add_argument(
        "--profile",
        action="store_true",
        help=(
            "count Python calls per message (all threads of both ends) and thread wake-ups "
            "(voluntary context switches) per message and per round trip, for thr, lat and fan"
        ),
    )
    eng.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    game = suites.add_parser(
        "game",
        help="the game server: actions/s and latency with 1, 2 and 4 workers",
        description=bench_game.__doc__.split("\n\n")[0] if bench_game.__doc__ else None,
    )
    bench_game.add_arguments(game)
    players = suites.add_parser(
        "players",
        help="the game as players see it: rate, closed loop, fan-out and logins vs issue 12",
        description=(bench_players.__doc__ or "").split("\n\n")[0] or None,
    )
    bench_players.add_arguments(players)
    conn = suites.add_parser(
        "connections",
        help="many players on one front: RSS per player, probe p99, fan-out 10/100/1000",
        description=(bench_connections.__doc__ or "").split("\n\n")[0] or None,
    )
    bench_connections.add_arguments(conn)
    health = suites.add_parser(
        "health",
        help="CPU per health check: crossroads ping / relay-stats against crossroads-health",
        description=(bench_health.__doc__ or "").split("\n\n")[0] or None,
    )
    bench_health.add_arguments(health)
    metrics = suites.add_parser(
        "metrics",
        help="worker CPU per action with and without the Prometheus metrics",
        description=(bench_metrics.__doc__ or "").split("\n\n")[0] or None,
    )
    bench_metrics.add_arguments(metrics)
    storm = suites.add_parser(
        "storm",
        help="players reconnecting at once: time until all are in, by listen backlog",
        description=(bench_storm.__doc__ or "").split("\n\n")[0] or None,
    )
    bench_storm.add_arguments(storm)
    cold = suites.add_parser(
        "cold",
        help="one call right after its process slept, against the same call made again at once",
        description=(bench_cold.__doc__ or "").split("\n\n")[0] or None,
    )
    bench_cold.add_arguments(cold)
    inproc = suites.add_parser(
        "inproc",
        help="inproc:// in one process: throughput, round trip, send+recv in one thread",
        description=(bench_inproc.__doc__ or "").split("\n\n")[0] or None,
    )
    bench_inproc.add_arguments(inproc)
    return parser


def _normalise(argv: list[str]) -> list[str]:
    """No suite named means `engine`: `bench`, `bench lat`, `bench --count small`."""
    if not argv or argv[0] in (*BENCHES, "all"):
        return ["engine", *argv]
    if argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return ["engine", *argv]
    return argv


def main(argv: list[str] | None = None, prog: str = "crossroads bench") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(_normalise(argv))
    # `kill PID` unwinds as Ctrl-C does: each suite stops its servers and helper processes
    # by PID on the way out. Without this a SIGTERM ended the bench at once and left them
    # running (a listening players' child spun on its closed pipe at a full core).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.suite == "game":
        return bench_game.run_game(args)
    if args.suite == "players":
        return bench_players.run_players(args)
    if args.suite == "connections":
        return bench_connections.run_connections(args)
    if args.suite == "health":
        return bench_health.run_health(args)
    if args.suite == "metrics":
        return bench_metrics.run_metrics(args)
    if args.suite == "storm":
        return bench_storm.run_storm(args)
    if args.suite == "cold":
        return bench_cold.run_cold(args)
    if args.suite == "inproc":
        return bench_inproc.run_inproc(args)
    return run_engine(args)


def run_engine(args: argparse.Namespace) -> int:
    subscribers = tuple(dict.fromkeys(args.subscribers))
    runs = plan(
        args.which,
        list(dict.fromkeys(args.size)),
        args.faces,
        args.count,
        subscribers,
        args.mechanism,
    )
    if args.profile:
        return bench_profile.run_profile(args, runs)
    ipc_dir = Path(tempfile.mkdtemp(prefix="crossroads-bench-"))
    started = time.monotonic()
    steps = len(runs) * args.rounds
    try:
        step = 0
        for n in range(1, args.rounds + 1):
            for run in runs:
                step += 1
                rnd = f" round {n}/{args.rounds}" if args.rounds > 1 else ""
                progress(f"[{step}/{steps}] {run.title}{rnd} ({run.count:,} {_unit(run)}) ... ")
                measure(run, args.transport, ipc_dir, args.timeout)
                progress(_outcome(run) + "\n")
    finally:
        shutil.rmtree(ipc_dir, ignore_errors=True)
    elapsed = time.monotonic() - started
    table_rows = rows(runs)
    errors = [r for r in runs if r.status == "error"]
    for r in errors:
        print(f"error in {r.title}: {r.note}", file=sys.stderr)
    text = table(table_rows)
    if args.json:
        print(json.dumps(_json(args, runs, table_rows, elapsed), indent=2))
        print(text, file=sys.stderr)  # humans still get the table, off the JSON stream
    else:
        security = "" if args.mechanism == "null" else f", {args.mechanism.upper()}"
        print(
            f"crossroads bench engine: {args.transport}{security}, both ends in separate "
            f"processes, median of {args.rounds} round{'s' if args.rounds > 1 else ''}"
        )
        print(text)
    progress(f"done in {elapsed:.1f}s\n")
    return 1 if errors else 0


def _unit(run: Run) -> str:
    if run.bench == "lat":
        return f"round trips after {run.warmup:,} warm-up"
    if run.bench == "evt":
        return f"events to {run.peers:,} SUBs"
    if run.bench == "mem":
        return "peers, one message each"
    return "msgs" if run.bench == "thr" else "msgs to each"


def _outcome(run: Run) -> str:
    if run.status != "ok":
        return f"error: {run.note.splitlines()[0]}" if run.status == "error" else run.note
    last = run.rounds[-1]
    if run.bench in ("thr", "fan"):
        return f"{last['msg_per_s']:,.0f} msg/s"
    if run.bench == "evt":
        return f"p50 {last['p50_ms']:,.2f} ms, max {last['max_ms']:,.2f} ms"
    if run.bench == "mem":
        return f"{last['kib_per_conn']:,.2f} KiB per accepted connection"
    return f"mean {last['mean_us']:,.1f} µs, p99 {last['p99_us']:,.1f} µs"


def _json(
    args: argparse.Namespace, runs: list[Run], table_rows: list[dict], elapsed: float
) -> dict:
    return {
        "suite": "engine",
        "transport": args.transport,
        "mechanism": args.mechanism,
        "faces": args.faces,
        "rounds": args.rounds,
        "seconds": round(elapsed, 3),
        "runs": [
            {
                "bench": r.bench,
                "size": r.size,
                "face": r.face,
                "impl": r.impl,
                "count": r.count,
                "warmup": r.warmup,
                "peers": r.peers,
                "status": r.status,
                "note": r.note,
                "metrics": r.metrics,
                "rounds": r.rounds,
            }
            for r in runs
        ],
        "rows": table_rows,
    }


if __name__ == "__main__":
    sys.exit(main())
