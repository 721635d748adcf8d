"""`crossroads bench metrics`: the worker CPU the metrics add to each action.

A worker's whole per-action path (``run_job``: decode, the command in a SQLite transaction,
encode) runs --actions times without the metrics observer and the same number of times with it
(``ActionMeter`` counting verb, outcome and latency, and the DEBUG log-level check), alternating,
for three rounds; the table shows the process CPU per action (user + system, from the kernel) of
each, the median of the rounds, and the difference. A scrape's cost (rendering the worker's
/metrics text) is shown too: it is paid per scrape, not per action.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

from gameserver.cli_numbers import positive
from gameserver.commands import default_commands
from gameserver.jobs import run_job
from gameserver.metrics import ActionMeter, action_observer, require_client, worker_registry
from gameserver.protocol import ActionRequest, LoginReply, LoginRequest, encode, request_job
from gameserver.service import GameService

ROUNDS = 3
COMMANDS = ("look", "say hello", "who", "inventory")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actions", type=positive(int), default=3000, help="actions per mode and round (3000)"
    )


def run_metrics(args: argparse.Namespace) -> int:
    require_client()
    with tempfile.TemporaryDirectory(prefix="crossroads-bench-metrics-") as tmp:
        service = GameService.open(f"sqlite:///{Path(tmp) / 'game.db'}")
        try:
            return _measure(service, args.actions)
        finally:
            service.close()


def _measure(service: GameService, actions: int) -> int:
    login = service.handle(LoginRequest(name="Bench", password="bench-password")).reply
    assert isinstance(login, LoginReply)
    meter = ActionMeter(default_commands())
    observer = action_observer(meter)
    ids = count()

    def jobs() -> list[list[bytes]]:
        return [
            request_job(
                encode(
                    ActionRequest(
                        token=login.token, action_id=f"a{next(ids)}", text=COMMANDS[i % 4]
                    )
                )
            )
            for i in range(actions)
        ]

    cpu: dict[str, list[float]] = {"without metrics": [], "with metrics": []}
    for round_number in range(1, ROUNDS + 1):
        for mode in cpu:
            batch = jobs()
            hook = observer if mode == "with metrics" else None
            print(f"[round {round_number}/{ROUNDS}] {mode} ...", end=" ", file=sys.stderr)
            start = time.process_time()
            for job in batch:
                run_job(service, job, observer=hook)
            per_action = (time.process_time() - start) / actions * 1e6
            cpu[mode].append(per_action)
            print(f"{per_action:.1f} us/action", file=sys.stderr, flush=True)
    registry = worker_registry(meter, "bench")
    from prometheus_client import generate_latest

    start = time.process_time()
    scrapes = 200
    for _ in range(scrapes):
        generate_latest(registry)
    scrape_us = (time.process_time() - start) / scrapes * 1e6
    off, on = (statistics.median(v) for v in cpu.values())
    print(f"crossroads bench metrics: worker CPU per action, median of {ROUNDS} rounds")
    print(f"  {'without metrics':<18} {off:10.1f} us")
    print(f"  {'with metrics':<18} {on:10.1f} us")
    print(
        f"  {'difference':<18} {on - off:10.1f} us  ({(on / off - 1) * 100:+.1f}%, ratio {on / off:.3f})"
    )
    print(f"  one scrape of the worker's /metrics: {scrape_us:.0f} us of CPU")
    return 0
