"""`crossroads bench health`: the CPU one health check costs, the old way and the image's way.

Docker runs each container's health check every few seconds, so its cost is paid all the time,
by every container. This starts a front (`crossroads serve`, one worker, SQLite in a temporary
directory) and a relay in front of it, then runs each check --runs times per round and reports
the median CPU time (user + system of the check's process, from wait4) of the middle round of
three, the old command and the image's side by side:

  front   crossroads ping --front EP (CURVE)    crossroads-health key KEY-EP
  relay   crossroads relay-stats --json EP       crossroads-health relay EP
  worker  (none)                                 crossroads-health file PATH

The image's checks run as its launcher does (deploy/crossroads-health): python -IS, importing
gameserver.health from its bytecode. Every check must succeed, or the figure would be a failure's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gameserver.cli_numbers import positive
from loadtest.bench_game import GameBenchError, ServeProcess

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
#: Rounds per check; the reported figure is the median of the rounds' medians.
ROUNDS = 3
#: How long the relay may take to print its endpoints.
RELAY_START_S = 60.0
#: How long its upstream links may then take to come up (their CURVE handshakes).
RELAY_LINKS_S = 30.0
#: Between two looks at whether they are up.
RELAY_LINKS_RETRY_S = 0.05
#: The image's launcher, as a -c program: the same imports, from this checkout.
IMAGE_LAUNCHER = (
    "import sys; sys.path.append(sys.argv.pop(1)); from gameserver.health import main; "
    "sys.exit(main())"
)


def cpu_ms(argv: list[str], env: dict[str, str]) -> float:
    """CPU milliseconds (user + system) of one run of ``argv``, which must exit 0."""
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise GameBenchError(f"{' '.join(argv[:6])} ... failed: {stderr.strip()[-300:]}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def wait_healthy(argv: list[str], env: dict[str, str], limit_s: float) -> None:
    """Run the check ``argv`` until it passes. The relay prints "ready" once it listens, and
    its upstream links come up after that: a check asked in between answers "the upstream
    events link is down" at once (CI saw this bench fail so once), so one try is not a wait."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            cpu_ms(argv, env)
            return
        except GameBenchError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(RELAY_LINKS_RETRY_S)


def median_cpu_ms(argv: list[str], env: dict[str, str], runs: int) -> float:
    rounds = [statistics.median(cpu_ms(argv, env) for _ in range(runs)) for _ in range(ROUNDS)]
    return statistics.median(rounds)


class RelayProcess:
    """`crossroads relay` for both the front's links, with a stats endpoint."""

    def __init__(
        self, updates: str, actions: str, log: object, upstream_key: str, data: Path
    ) -> None:
        local = "tcp://127.0.0.1:0"
        args = ["--upstream", updates, "--bind", local, "--actions-upstream", actions]
        args += ["--actions-bind", local, "--stats-bind", local, "--log-level", "WARNING"]
        args += [f"--upstream-key={upstream_key}", "--known-hosts", str(data / "known_hosts")]
        args += ["--keys-dir", str(data / "keys")]  # its own key, made on first run
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", *args],
            stdout=subprocess.PIPE,
            stderr=log,  # type: ignore[arg-type]
            env=_env(),
            text=True,
        )
        self.stats = ""
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        if not ready.wait(RELAY_START_S) or not self.stats:
            self.stop()
            raise GameBenchError(f"the relay did not start within {RELAY_START_S:g}s")

    def _read(self, ready: threading.Event) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if match := re.match(r"^stats (\S+)", line):
                self.stats = match[1]
            if line.startswith("ready"):
                ready.set()
        ready.set()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return env


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=positive(int), default=10, help="checks per round (10)")


def run_health(args: argparse.Namespace) -> int:
    env = _env()
    # The old checks, as `crossroads ping` and `crossroads relay-stats` run them.
    old_ping = [sys.executable, "-m", "gameserver.ping"]
    old_stats = [sys.executable, "-m", "relay.stats"]
    new = [sys.executable, "-IS", "-c", IMAGE_LAUNCHER, _PACKAGE_ROOT]
    rows: list[tuple[str, str, float | None, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="crossroads-bench-health-") as tmp,
        (Path(tmp) / "serve.log").open("a") as log,
    ):
        alive = Path(tmp) / "alive"
        alive.touch()
        server = relay = None
        try:
            server = ServeProcess(f"sqlite:///{tmp}/game.sqlite3", 1, 0, log)
            key, key_endpoint = server.endpoints["key"], server.endpoints["key_endpoint"]
            relay = RelayProcess(
                server.endpoints["updates"], server.endpoints["actions"], log, key, Path(tmp)
            )
            front, stats = server.endpoints["actions"], relay.stats
            wait_healthy([*new, "relay", stats], env, RELAY_LINKS_S)
            print(f"{ROUNDS} rounds of {args.runs} checks each ...", file=sys.stderr, flush=True)
            checks = [
                (
                    "front",
                    "crossroads ping",
                    # Player ports speak CURVE: ping seals its request; the stdlib checker
                    # asks the key announcement (what the compose file's check does).
                    [*old_ping, "--front", front, f"--server-key={key}", "-q"],
                    [*new, "key", key_endpoint, "-q"],
                ),
                (
                    "relay",
                    "crossroads relay-stats",
                    [*old_stats, "--json", stats],
                    [*new, "relay", stats, "-q"],
                ),
                ("worker", "-", None, [*new, "file", str(alive), "--max-age", "86400", "-q"]),
            ]
            for name, label, before, now in checks:
                was = median_cpu_ms(before, env, args.runs) if before else None
                rows.append((name, label, was, median_cpu_ms(now, env, args.runs)))
        except GameBenchError as exc:
            print(f"crossroads bench health: {exc}", file=sys.stderr)
            return 1
        finally:
            if relay is not None:
                relay.stop()
            if server is not None:
                server.stop()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"CPU per health check (median of {ROUNDS} rounds x {args.runs}; load {load})\n")
    print("| check | before | before ms | crossroads-health ms | before / now |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, command, was, now in rows:
        ratio = f"{was / now:.1f}x" if was else "-"
        print(f"| {name} | {command} | {f'{was:.1f}' if was else '-'} | {now:.1f} | {ratio} |")
    return 0
