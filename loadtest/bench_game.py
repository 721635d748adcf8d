"""`crossroads bench game`: the whole game server under load, with 1, 2 and 4 workers.

Each run starts a real `crossroads serve` (front + N worker processes, a fresh store), logs in
``--clients`` players through :class:`client.session.GameSession`, and has each send the same
command in a closed loop: actions/s and p50/p99 round-trip latency are measured after a
warm-up. Two modes:

* ``light``: the command as is; the store's commit path dominates.
* ``cpu``: the workers burn ``--cpu-burn`` iterations of deterministic pure-Python work per
  action before touching the store (standing in for heavy game logic), so adding workers
  spreads the load over cores, up to the machine's core count.

The machine is noisy (three runs of the cpu mode in one minute gave 1.52x, 1.67x and 2.01x for
2 workers against 1), so each of ``--rounds`` rounds runs every worker count in turn, and the
table gives the median round: actions/s, and the ratio to 1 worker taken within each round,
from runs a few seconds apart. The cpu mode's reference is the machine itself: in each round,
the ``burn`` row runs the same loop in as many bare processes as there are workers, without
a server, and counts the loops per second (a virtual machine's two cores do not always give
two cores' work: two such loops side by side took 0.59-0.89 s against 0.60-0.76 s alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gameserver.cli_numbers import count_list, positive

MODES = ("light", "cpu")
#: The cpu mode's reference rows: the burn loop in bare processes (see the module's doc).
BURN = "burn"
#: Run by a bare process: loops of ``burn`` from a start time to an end time, then the count.
_BURN_LOOP = """
import sys, time
from gameserver.jobs import burn
iterations, start, end = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
while time.time() < start:
    time.sleep(0.005)
loops = 0
while time.time() < end:
    burn(iterations)
    loops += 1
print(loops)
"""
#: ~15-20 ms of Python per action on a typical core: heavy enough to dwarf the request path.
DEFAULT_CPU_BURN = 150_000
#: Longest wait for a server to print "ready" (it starts worker processes).
START_TIMEOUT_S = 60.0
LOCAL = "tcp://127.0.0.1:0"
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class GameBenchError(RuntimeError):
    """A run that could not be measured; the message says why."""


@dataclass
class GameRun:
    mode: str
    workers: int
    round: int = 1
    actions: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    status: str = "pending"
    note: str = ""

    @property
    def rate(self) -> float:
        return self.actions / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


class ServeProcess:
    """A `crossroads serve` child: endpoints parsed from its stdout, killed by PID at the end."""

    def __init__(self, store: str, workers: int, cpu_burn: int, log: Any) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        args = ["--workers", str(workers), "--store", store, "--cpu-burn", str(cpu_burn)]
        args += ["--actions-bind", LOCAL, "--updates-bind", LOCAL, "--workers-bind", LOCAL]
        # The point is throughput: no rate limit, and room for every client's request.
        args += ["--rate", "1e9", "--burst", "1e9", "--log-level", "WARNING"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gameserver.serve", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            text=True,
        )
        self.endpoints: dict[str, str] = {}
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        started = ready.wait(START_TIMEOUT_S)
        if not started or "actions" not in self.endpoints:
            if started:  # its output ended before "ready": it is on its way out
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(10)
            exited = self.process.poll() is not None
            self.stop()
            if exited:  # say why, in the server's own last words
                raise GameBenchError(f"the server exited: {_last_line(log)}")
            raise GameBenchError(f"the server did not start within {START_TIMEOUT_S:g}s")

    def _read(self, ready: threading.Event) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if match := re.match(r"^(actions|updates) (\S+)", line):
                self.endpoints[match[1]] = match[2]
            elif match := re.match(r"^front public key (\S+)", line):
                self.endpoints["key"] = match[1]  # we started it: its own word is the key
            elif match := re.match(r"^key (\S+)", line):
                self.endpoints["key_endpoint"] = match[1]
            if line.startswith("ready"):
                ready.set()
        ready.set()  # exited: let the waiter see it

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # graceful: the server stops its own workers
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _last_line(log: Any) -> str:
    """The last non-blank line the server wrote to its log file (``log`` still open)."""
    log.flush()
    with open(log.name, encoding="utf-8", errors="replace") as text:
        lines = [line.strip() for line in text if line.strip()]
    return lines[-1] if lines else "(nothing in its log)"


async def load(run: GameRun, endpoints: dict[str, str], args: argparse.Namespace) -> None:
    """Closed loop: each client sends its next action as soon as the last one is answered."""
    from client.session import GameSession, SessionError  # the engine loads only when needed

    # CURVE, as players connect to a default front (its key from its own banner).
    key = endpoints["key"].encode() if "key" in endpoints else None
    sessions = [
        GameSession(endpoints["actions"], endpoints["updates"], server_key=key)
        for _ in range(args.clients)
    ]
    try:
        await asyncio.gather(
            *(s.login(f"bench{i}", "bench-password") for i, s in enumerate(sessions))
        )
        started = time.perf_counter()
        measure_from = started + args.warmup
        stop_at = measure_from + args.duration

        async def client(session: GameSession) -> None:
            while (begin := time.perf_counter()) < stop_at:
                try:
                    await session.act(args.command)
                except SessionError:
                    if begin >= measure_from:
                        run.errors += 1
                    continue
                end = time.perf_counter()
                if begin >= measure_from:
                    run.actions += 1
                    run.latencies_ms.append((end - begin) * 1000)
                session.pending_events()  # nobody reads the updates here: let them go

        await asyncio.gather(*(client(s) for s in sessions))
        run.seconds = args.duration
    finally:
        for session in sessions:
            await session.close()


def measure_burn(run: GameRun, args: argparse.Namespace) -> None:
    """The burn loop in ``run.workers`` bare processes at once: its loops/s, as actions/s."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    start = time.time() + 1.0  # after every process has started and imported
    end = start + args.duration
    command = [sys.executable, "-c", _BURN_LOOP, str(args.cpu_burn), str(start), str(end)]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
        for _ in range(run.workers)
    ]
    try:
        counts = [p.communicate(timeout=args.duration + START_TIMEOUT_S)[0] for p in processes]
        run.actions = sum(int(count) for count in counts)
        run.seconds = args.duration
        run.status = "ok"
    except (subprocess.TimeoutExpired, ValueError) as exc:
        run.status, run.note = "error", f"{type(exc).__name__}: {exc}"
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


def measure(run: GameRun, args: argparse.Namespace, workdir: Path) -> None:
    store = args.store or f"sqlite:///{workdir / f'{run.mode}-{run.workers}.sqlite3'}"
    if args.store and args.store.startswith("redis"):
        # A fresh key prefix per run: a clean world, and nobody's data touched.
        sep = "&" if "?" in store else "?"
        store = f"{store}{sep}prefix=crossroads-bench-{uuid.uuid4().hex[:8]}:"
    burn = args.cpu_burn if run.mode == "cpu" else 0
    with (workdir / "serve.log").open("a") as log:
        server = ServeProcess(store, run.workers, burn, log)
        try:
            asyncio.run(load(run, server.endpoints, args))
            run.status = "ok"
        except Exception as exc:  # report it in the table, go on with the next run
            run.status, run.note = "error", f"{type(exc).__name__}: {exc}"
        finally:
            server.stop()


@dataclass
class GameRow:
    """One mode and worker count over every round: the median round's figures. ``base``: the
    same mode's row with 1 worker, if that ran."""

    mode: str
    workers: int
    runs: list[GameRun]
    base: GameRow | None = None

    @property
    def timed(self) -> bool:
        return self.mode != BURN  # the bare loops have no requests to time

    @property
    def measured(self) -> list[GameRun]:
        return [r for r in self.runs if r.status == "ok"]

    @property
    def rate(self) -> float:
        rates = [r.rate for r in self.measured]
        return statistics.median(rates) if rates else 0.0

    def speedup(self) -> float | None:
        """The median over rounds of this row's actions/s against ``base``'s in that round."""
        if self.base is None:
            return None
        theirs = {r.round: r.rate for r in self.base.measured if r.rate}
        ratios = [r.rate / theirs[r.round] for r in self.measured if r.round in theirs]
        return statistics.median(ratios) if ratios else None

    def percentile(self, q: float) -> float:
        pooled = GameRun(self.mode, self.workers)
        pooled.latencies_ms = [ms for r in self.measured for ms in r.latencies_ms]
        return pooled.percentile(q)


def rows_of(runs: list[GameRun]) -> list[GameRow]:
    """The runs grouped by mode and worker count, in the order they first ran."""
    rows: dict[tuple[str, int], GameRow] = {}
    for r in runs:
        rows.setdefault((r.mode, r.workers), GameRow(r.mode, r.workers, [])).runs.append(r)
    for row in rows.values():
        row.base = rows.get((row.mode, 1))
    return list(rows.values())


def table(runs: list[GameRun]) -> str:
    header = ("mode", "workers", "actions/s", "rounds", "p50 ms", "p99 ms", "errors", "vs 1 worker")
    body = []
    for row in rows_of(runs):
        failed = [r for r in row.runs if r.status != "ok"]
        if failed:
            body.append((row.mode, str(row.workers), failed[0].note[:40], *["-"] * 5))
            continue
        speedup, timed = row.speedup(), row.timed
        body.append(
            (
                row.mode,
                str(row.workers),
                f"{row.rate:,.0f}",
                " / ".join(f"{r.rate:,.0f}" for r in row.runs),
                f"{row.percentile(50):.1f}" if timed else "-",
                f"{row.percentile(99):.1f}" if timed else "-",
                str(sum(r.errors for r in row.runs)) if timed else "-",
                "-" if speedup is None else f"{speedup:.2f}x",
            )
        )
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            [cells[0].ljust(widths[0])]
            + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        )

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, body)])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_int_list,
        default=[1, 2, 4],
        metavar="LIST",
        help="comma list of worker counts (default: 1,2,4)",
    )
    parser.add_argument(
        "--modes",
        type=_mode_list,
        default=list(MODES),
        metavar="LIST",
        help="comma list of light,cpu (default: both)",
    )
    parser.add_argument(
        "--clients", type=positive(int), default=8, help="concurrent players (default: 8)"
    )
    parser.add_argument(
        "--duration",
        type=positive(float),
        default=5.0,
        metavar="SECONDS",
        help="measured time per run (default: 5)",
    )
    parser.add_argument(
        "--warmup",
        type=positive(float, zero=True),
        default=1.0,
        metavar="SECONDS",
        help="unmeasured time first (default: 1)",
    )
    parser.add_argument(
        "--rounds",
        type=positive(int),
        default=3,
        metavar="N",
        help="rounds, each running every worker count in turn; figures are the median "
        "round's (default: 3)",
    )
    parser.add_argument(
        "--command", default="look", help="the action each client repeats (default: look)"
    )
    parser.add_argument(
        "--cpu-burn",
        type=positive(int),
        default=DEFAULT_CPU_BURN,
        metavar="N",
        help=f"work per action in cpu mode, in loop iterations (default: {DEFAULT_CPU_BURN:,})",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="redis://host:port/db to bench Redis (a fresh key prefix per run); default: a "
        "temporary SQLite file per run",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, in one line; None if nothing."""
    if not args.command.strip():
        return "--command must not be empty"
    if args.store and not args.store.startswith(("redis://", "rediss://", "unix://")):
        # Each run needs a world of its own: SQLite is the default (a fresh file per run).
        return f"--store takes a Redis URL (redis://host:port/db), not {args.store!r}"
    return None


def run_game(args: argparse.Namespace) -> int:
    if (problem := argument_problem(args)) is not None:
        print(f"crossroads bench game: {problem}", file=sys.stderr)
        return 2
    modes = [*args.modes, BURN] if "cpu" in args.modes else args.modes
    runs = [
        GameRun(mode, workers, n)
        for n in range(1, args.rounds + 1)
        for mode in modes
        for workers in args.workers
    ]
    workdir = Path(tempfile.mkdtemp(prefix="crossroads-bench-game-"))
    started = time.monotonic()
    try:
        for i, run in enumerate(runs, 1):
            who = "bare process(es)" if run.mode == BURN else "worker(s)"
            what = f"{run.mode}, {run.workers} {who}, round {run.round}"
            _progress(f"[{i}/{len(runs)}] {what} ... ")
            if run.mode == BURN:
                measure_burn(run, args)
            else:
                try:
                    measure(run, args, workdir)
                except GameBenchError as exc:  # no server, no run: every other would fail too
                    _progress("\n")
                    print(f"crossroads bench game: {exc}", file=sys.stderr)
                    return 1
            unit = "loops/s" if run.mode == BURN else "actions/s"
            done = f"{run.rate:,.0f} {unit}" if run.status == "ok" else f"error: {run.note}"
            _progress(done + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = table(runs)
    intro = (
        f"crossroads bench game: {args.clients} clients repeating {args.command!r}, "
        f"{args.duration:g}s each after {args.warmup:g}s warm-up, {args.rounds} round(s) "
        f"(median); cpu mode burns "
        f"{args.cpu_burn:,} iterations per action; {os.cpu_count()} core(s); "
        f"store {'redis' if args.store else 'sqlite'}"
    )
    if "cpu" in args.modes:
        intro += (
            "\nburn: the reference, the same loop in as many bare processes (no server), "
            "loops/s in the actions/s column"
        )
    if args.json:
        results = [
            {
                "mode": row.mode,
                "workers": row.workers,
                "actions_per_s": row.rate,
                "vs_1_worker": row.speedup(),
                "p50_ms": row.percentile(50) if row.timed else None,
                "p99_ms": row.percentile(99) if row.timed else None,
                "rounds": [
                    {
                        **{k: v for k, v in asdict(r).items() if k != "latencies_ms"},
                        "actions_per_s": r.rate,
                    }
                    for r in row.runs
                ],
            }
            for row in rows_of(runs)
        ]
        print(json.dumps({"suite": "game", "rows": results}, indent=2))
        print(intro + "\n" + text, file=sys.stderr)
    else:
        print(intro)
        print(text)
    _progress(f"done in {time.monotonic() - started:.1f}s\n")
    return 1 if any(r.status != "ok" for r in runs) else 0


def _int_list(text: str) -> list[int]:
    return list(dict.fromkeys(count_list(text)))  # each worker count once


def _mode_list(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        raise argparse.ArgumentTypeError(f"modes are a comma list of {','.join(MODES)}")
    return list(dict.fromkeys(modes))


def _progress(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()
