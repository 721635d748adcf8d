"""`crossroads bench`: the engine against pyzmq, in the spirit of libzmq's local_thr/local_lat.

Each measurement runs its two ends in two spawned processes (loadtest.bench_workers): PUSH->PULL
throughput timed on the receiver, REQ->REP round trips timed on the requester. The engine and
pyzmq run side by side in one invocation and one table. pyzmq is optional: it is imported only
to check it is there, and only the children that need it import it for real.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import queue as queue_mod
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import bench_connections, bench_game
from loadtest.bench_workers import Job, worker_main

FACES = ("sync", "asyncio")
IMPLS = ("engine", "pyzmq")
NO_SYNC_FACE = "n/a (sync face not available)"
NO_PYZMQ = "pyzmq not installed"


class BenchError(RuntimeError):
    """A benchmark that failed or hung; the message says which and why."""


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


# -- what is available ----------------------------------------------------------------------------


def unavailable(impl: str, face: str) -> str | None:
    """Why this implementation/face cannot run here, or None when it can."""
    if impl == "pyzmq":
        try:
            importlib.import_module("zmq")  # lazily: the runtime never requires pyzmq
        except ImportError:
            return NO_PYZMQ
        return None
    if face == "sync":
        import engine

        # Checked on every run, so the rows light up as soon as engine.Context exists.
        if not hasattr(engine, "Context"):
            return NO_SYNC_FACE
    return None


# -- running one measurement ----------------------------------------------------------------------


@dataclass
class Run:
    """One measurement: a benchmark, a face and an implementation."""

    bench: str  # "thr" or "lat"
    size: int
    face: str
    impl: str
    count: int
    warmup: int = 0
    status: str = "pending"  # "ok", "n/a" or "error"
    note: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.bench} {fmt_size(self.size)} {self.face} {self.impl}"


def run_pair(binder: Job, connecter: Job, timeout: float) -> dict[str, float]:
    """Start the binding end, hand its endpoint to the connecting end, return the result.

    Both ends are always reaped: joined once the parent has the result, killed by PID if they
    do not exit, so a hung benchmark costs at most `timeout` and leaves nothing behind.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork: a clean interpreter per end
    reports = ctx.Queue()
    done = ctx.Event()
    procs: list[Any] = []
    deadline = time.monotonic() + timeout
    ok = False
    try:
        procs.append(_start(ctx, binder, reports, done))
        endpoint = _expect(reports, "endpoint", procs, deadline, timeout)
        procs.append(_start(ctx, connecter.with_address(endpoint), reports, done))
        result = _expect(reports, "result", procs, deadline, timeout)
        ok = True
        return result
    finally:
        done.set()  # lets senders and REP close: everything they sent has arrived
        # After a failure nothing is worth waiting for; a peer left running would only spin.
        grace = 5.0 if ok else 0.0
        for proc in reversed(procs):
            proc.join(timeout=grace)
            if proc.is_alive():
                proc.kill()  # SIGKILL to that PID only
                proc.join(timeout=5)
        reports.close()
        reports.cancel_join_thread()  # never block on a queue a killed child left half-read


def _start(ctx: Any, job: Job, reports: Any, done: Any) -> Any:
    proc = ctx.Process(target=worker_main, args=(job, reports, done), daemon=True)
    proc.start()
    return proc


def _expect(reports: Any, kind: str, procs: list[Any], deadline: float, timeout: float) -> Any:
    """Wait for a `kind` report, failing fast if a child errors or dies first."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"timed out after {timeout:g}s waiting for the {kind}")
        try:
            got, payload = reports.get(timeout=min(remaining, 0.2))
        except queue_mod.Empty:
            for proc in procs:
                if proc.exitcode is not None and proc.exitcode != 0:
                    raise BenchError(f"a benchmark process died (exit code {proc.exitcode})")
            continue
        if got == "error":
            raise BenchError(payload.rstrip())
        if got == kind:
            return payload


def measure(run: Run, transport: str, ipc_dir: Path, timeout: float) -> None:
    """Fill in `run` (metrics, or a status and note saying why not)."""
    reason = unavailable(run.impl, run.face)
    if reason is not None:
        run.status, run.note = "n/a", reason
        return
    if transport == "ipc":
        address = f"ipc://{ipc_dir / uuid.uuid4().hex[:12]}.sock"
    else:
        address = "tcp://127.0.0.1:*"
    # Children outlive a hang by a little at most; the parent kills them anyway.
    common = dict(impl=run.impl, face=run.face, size=run.size, count=run.count, wait_s=timeout)
    if run.bench == "thr":
        binder = Job(role="thr_recv", address=address, **common)
        connecter = Job(role="thr_send", address="", **common)
    else:
        binder = Job(role="lat_rep", address=address, warmup=run.warmup, **common)
        connecter = Job(role="lat_req", address="", warmup=run.warmup, **common)
    try:
        run.metrics = run_pair(binder, connecter, timeout)
        run.status = "ok"
    except BenchError as exc:
        run.status, run.note = "error", str(exc)


# -- the plan and the report ----------------------------------------------------------------------


def plan(which: str, sizes: list[int], faces: list[str], counts: Counts) -> list[Run]:
    runs: list[Run] = []
    if which in ("thr", "all"):
        for size in sizes:
            for face in faces:
                for impl in IMPLS:
                    runs.append(Run("thr", size, face, impl, counts.for_size(size)))
    if which in ("lat", "all"):
        size = min(sizes)  # latency with the smallest size, like local_lat's usual runs
        for face in faces:
            for impl in IMPLS:
                runs.append(Run("lat", size, face, impl, counts.round_trips, counts.warmup))
    return runs


#: (bench, metric key, row label suffix, lower is better)
METRICS = (
    ("thr", "msg_per_s", "msg/s", False),
    ("lat", "mean_us", "mean µs (lower is better)", True),
    ("lat", "p50_us", "p50 µs (lower is better)", True),
    ("lat", "p99_us", "p99 µs (lower is better)", True),
)


def rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per benchmark, face and metric, with the engine and pyzmq side by side."""
    by_key = {(r.bench, r.size, r.face, r.impl): r for r in runs}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int, str]] = set()
    for r in runs:
        key = (r.bench, r.size, r.face)
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
                    "benchmark": f"{r.bench} {fmt_size(r.size)} {label}",
                    "bench": r.bench,
                    "size": r.size,
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


def fmt_size(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


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
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(b) for b in body)])


# -- the command ----------------------------------------------------------------------------------


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Benchmarks. With no suite, runs `engine` with its defaults.",
    )
    suites = parser.add_subparsers(dest="suite", metavar="SUITE")
    eng = suites.add_parser(
        "engine",
        help="engine vs pyzmq: PUSH/PULL throughput and REQ/REP latency",
        description=(
            "Engine vs pyzmq, each end in its own process. thr: PUSH->PULL, timed on the "
            "receiver from first to last message. lat: REQ->REP round trips after a warm-up."
        ),
    )
    eng.add_argument(
        "which",
        nargs="?",
        choices=("thr", "lat", "all"),
        default="all",
        help="throughput, latency or both (default: all)",
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
        type=int,
        nargs="+",
        default=[16, 1024],
        metavar="BYTES",
        help="message sizes for throughput; latency uses the smallest (default: 16 1024)",
    )
    eng.add_argument("--transport", choices=("tcp", "ipc"), default="tcp")
    eng.add_argument(
        "--faces",
        type=parse_faces,
        default=list(FACES),
        metavar="LIST",
        help="comma list of sync,asyncio (default: both)",
    )
    eng.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="give up on one measurement after this long (default: 60)",
    )
    eng.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    game = suites.add_parser(
        "game",
        help="the game server: actions/s and latency with 1, 2 and 4 workers",
        description=bench_game.__doc__.split("\n\n")[0] if bench_game.__doc__ else None,
    )
    bench_game.add_arguments(game)
    conn = suites.add_parser(
        "connections",
        help="many players on one front: RSS per player, probe p99, fan-out 10/100/1000",
        description=(bench_connections.__doc__ or "").split("\n\n")[0] or None,
    )
    bench_connections.add_arguments(conn)
    return parser


def _normalise(argv: list[str]) -> list[str]:
    """No suite named means `engine`: `bench`, `bench lat`, `bench --count small`."""
    if not argv or argv[0] in ("thr", "lat", "all"):
        return ["engine", *argv]
    if argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return ["engine", *argv]
    return argv


def main(argv: list[str] | None = None, prog: str = "crossroads bench") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(prog).parse_args(_normalise(argv))
    if args.suite == "game":
        return bench_game.run_game(args)
    if args.suite == "connections":
        return bench_connections.run_connections(args)
    return run_engine(args)


def run_engine(args: argparse.Namespace) -> int:
    if any(s <= 0 for s in args.size):
        print("--size values must be positive", file=sys.stderr)
        return 2
    runs = plan(args.which, list(dict.fromkeys(args.size)), args.faces, args.count)
    ipc_dir = Path(tempfile.mkdtemp(prefix="crossroads-bench-"))
    started = time.monotonic()
    try:
        for i, run in enumerate(runs, 1):
            _progress(f"[{i}/{len(runs)}] {run.title} ({run.count:,} {_unit(run)}) ... ")
            measure(run, args.transport, ipc_dir, args.timeout)
            _progress(_outcome(run) + "\n")
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
        print(f"crossroads bench engine: {args.transport}, both ends in separate processes")
        print(text)
    _progress(f"done in {elapsed:.1f}s\n")
    return 1 if errors else 0


def _unit(run: Run) -> str:
    return "msgs" if run.bench == "thr" else f"round trips after {run.warmup:,} warm-up"


def _outcome(run: Run) -> str:
    if run.status != "ok":
        return f"error: {run.note.splitlines()[0]}" if run.status == "error" else run.note
    if run.bench == "thr":
        return f"{run.metrics['msg_per_s']:,.0f} msg/s"
    return f"mean {run.metrics['mean_us']:,.1f} µs, p99 {run.metrics['p99_us']:,.1f} µs"


def _progress(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _json(
    args: argparse.Namespace, runs: list[Run], table_rows: list[dict], elapsed: float
) -> dict:
    return {
        "suite": "engine",
        "transport": args.transport,
        "faces": args.faces,
        "seconds": round(elapsed, 3),
        "runs": [
            {
                "bench": r.bench,
                "size": r.size,
                "face": r.face,
                "impl": r.impl,
                "count": r.count,
                "warmup": r.warmup,
                "status": r.status,
                "note": r.note,
                "metrics": r.metrics,
            }
            for r in runs
        ],
        "rows": table_rows,
    }


if __name__ == "__main__":
    sys.exit(main())
