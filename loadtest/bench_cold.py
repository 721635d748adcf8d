"""`crossroads bench cold`: what one call costs right after its process slept, against the same
call made again at once.

Why the rate rows of `crossroads bench players` cost several times the closed loop's CPU per
action: between two actions at 100 a second each server process sleeps about 10 ms, and its
code and data leave the CPU's caches meanwhile, so the next action pays for bringing back
everything it touches. This measures that with one of the game's own calls (a worker's first
step on a job, decoding an action request): after a sleep in epoll of each ``--gaps`` length,
the call is timed once (cold), then again (warm, the reference beside it). A third column
first keeps the process awake for ``--awake-us`` (a spin that touches nothing else) and then
times the call: if that is as slow as the cold call, the cost is the call's own code and data
coming back, not a slow start of the CPU after a wake-up. A fourth column never sleeps: the
process spins for the whole gap, then times the call. If that is cold too, the caches were
emptied while the process ran and its vCPU never halted, so by something outside this process
and its sleeps (on this VM, outside the guest: see README, "Why cold costs this much").
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import statistics
import sys
import time
from collections.abc import Callable

from gameserver.cli_numbers import count_list, positive
from gameserver.protocol import ActionRequest, decode_request, encode

#: A `look` as a worker receives it (the front has checked it already; a worker checks again).
REQUEST = encode(ActionRequest(token="A" * 43, action_id="c1-42", text="look"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gaps",
        type=count_list,
        default=[1, 10, 50],
        metavar="LIST",
        help="sleeps before the call, in ms (comma list; default: 1,10,50)",
    )
    parser.add_argument(
        "--calls",
        type=positive(int),
        default=300,
        metavar="N",
        help="sleeps per gap and round; each round's figure is their median (default: 300)",
    )
    parser.add_argument(
        "--awake-us",
        type=positive(int),
        default=200,
        metavar="US",
        help="how long the third column spins awake before the call (default: 200)",
    )
    parser.add_argument(
        "--rounds", type=positive(int), default=3, metavar="N", help="rounds (default: 3)"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")


def _spin(microseconds: int) -> None:
    end = time.perf_counter_ns() + microseconds * 1000
    while time.perf_counter_ns() < end:
        pass


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - started) / 1000


def measure_gap(gap_ms: int, calls: int, awake_us: int) -> dict[str, float]:
    """Medians over `calls` sleeps of `gap_ms`: the call cold, warm, and after `awake_us` awake."""

    def call() -> object:
        return decode_request(REQUEST)

    cold: list[float] = []
    warm: list[float] = []
    awake: list[float] = []
    spun: list[float] = []
    waker, sleeper = socket.socketpair()  # never written: the select times out, as a loop's does
    with selectors.DefaultSelector() as selector:
        selector.register(sleeper, selectors.EVENT_READ)
        try:
            for _ in range(calls):
                selector.select(gap_ms / 1000)
                cold.append(_timed(call))
                warm.append(_timed(call))
                selector.select(gap_ms / 1000)
                _spin(awake_us)
                awake.append(_timed(call))
                _spin(gap_ms * 1000)
                spun.append(_timed(call))
        finally:
            waker.close()
            sleeper.close()
    return {
        "cold_us": statistics.median(cold),
        "warm_us": statistics.median(warm),
        "awake_first_us": statistics.median(awake),
        "spun_through_us": statistics.median(spun),
    }


def run_cold(args: argparse.Namespace) -> int:
    results: dict[int, list[dict[str, float]]] = {gap: [] for gap in args.gaps}
    for n in range(1, args.rounds + 1):
        for gap in args.gaps:
            print(f"round {n}/{args.rounds}: {gap} ms gaps ...", file=sys.stderr, flush=True)
            results[gap].append(measure_gap(gap, args.calls, args.awake_us))
    rows = []
    for gap, rounds in results.items():
        row = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        rows.append({"gap_ms": gap, **row, "cold_vs_warm": row["cold_us"] / row["warm_us"]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"one call (decoding a `look` request), median of {args.calls} sleeps, "
        f"median of {args.rounds} round(s)"
    )
    print(
        f"{'sleep':>8}  {'cold us':>8}  {'warm us':>8}  {'cold/warm':>9}  {'awake first us':>14}"
        f"  {'spun through us':>15}"
    )
    for row in rows:
        print(
            f"{row['gap_ms']:>5} ms  {row['cold_us']:8.2f}  {row['warm_us']:8.2f}  "
            f"{row['cold_vs_warm']:8.1f}x  {row['awake_first_us']:14.2f}"
            f"  {row['spun_through_us']:15.2f}"
        )
    print(f"awake first: the call after {args.awake_us} us spent awake (spinning) past the sleep")
    print("spun through: the call after spinning for the whole gap instead of sleeping")
    return 0
