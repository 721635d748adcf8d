"""`crossroads bench inproc`: inproc:// within one process, the engine against pyzmq (libzmq).

Three measures, each library in a child process of its own, the libraries alternated in each
round: PUSH->PULL throughput with the two ends in two threads (timed on the receiver, first
to last message); a REQ->REP round trip with the REP in a thread of its own (median); and one
send and its recv in one thread (the mean over a run), where the message must be readable
when send() returns. The table shows the median of --rounds rounds and the engine's ratio.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from gameserver.cli_numbers import positive

LIBRARIES = ("engine", "zmq")
#: What each child reports: (key, label, unit, higher is better).
MEASURES = (
    ("thr", "PUSH/PULL, two threads", "msg/s", True),
    ("lat", "REQ/REP round trip, p50", "us", False),
    ("same", "send + recv, one thread", "us", False),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--count",
        type=positive(int),
        default=200_000,
        metavar="N",
        help="messages per throughput run; N/50 round trips, N/10 one-thread pairs "
        "(default: 200000)",
    )
    parser.add_argument(
        "--rounds", type=positive(int), default=3, metavar="N", help="rounds (default: 3)"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")


def measure(library: str, count: int) -> dict[str, float]:
    """In the child: the three measures for `library` (engine or zmq)."""
    zmq: Any = importlib.import_module(library)
    ctx = zmq.Context()
    try:
        pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
        pull.bind("inproc://thr")
        push.connect("inproc://thr")
        sender = threading.Thread(target=lambda: [push.send(b"x" * 16) for _ in range(count)])
        sender.start()
        pull.recv()
        started = time.perf_counter()
        for _ in range(count - 1):
            pull.recv()
        thr = (count - 1) / (time.perf_counter() - started)
        sender.join()

        rep, req = ctx.socket(zmq.REP), ctx.socket(zmq.REQ)
        rep.bind("inproc://lat")
        req.connect("inproc://lat")
        trips = max(count // 50, 10)

        def serve() -> None:
            for _ in range(trips):
                rep.send(rep.recv())

        server = threading.Thread(target=serve)
        server.start()
        times = []
        for _ in range(trips):
            started = time.perf_counter()
            req.send(b"q")
            req.recv()
            times.append(time.perf_counter() - started)
        server.join()

        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        a.bind("inproc://same")
        b.connect("inproc://same")
        pairs = max(count // 10, 10)
        started = time.perf_counter()
        for _ in range(pairs):
            a.send(b"x")
            b.recv()
        same = (time.perf_counter() - started) / pairs
        return {"thr": thr, "lat": statistics.median(times) * 1e6, "same": same * 1e6}
    finally:
        ctx.destroy(linger=0)


def run_inproc(args: argparse.Namespace) -> int:
    results: dict[str, list[dict[str, float]]] = {lib: [] for lib in LIBRARIES}
    for n in range(1, args.rounds + 1):
        for lib in LIBRARIES:
            print(f"round {n}/{args.rounds}: {lib} ...", file=sys.stderr, flush=True)
            child = subprocess.run(
                [sys.executable, "-m", "loadtest.bench_inproc", "--child", lib, str(args.count)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if child.returncode != 0:
                tail = (child.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"crossroads bench inproc: the {lib} run failed: {tail}", file=sys.stderr)
                return 1
            results[lib].append(json.loads(child.stdout))
    medians = {
        lib: {key: statistics.median(r[key] for r in rounds) for key, *_ in MEASURES}
        for lib, rounds in results.items()
    }
    if args.json:
        print(json.dumps(medians, indent=2))
        return 0
    print(f"inproc in one process, median of {args.rounds} round(s), {args.count:,} messages")
    print(f"{'measure':<26} {'engine':>12} {'pyzmq':>12}  {'engine vs pyzmq':>15}")
    for key, label, unit, higher_better in MEASURES:
        ours, theirs = medians["engine"][key], medians["zmq"][key]
        ratio = ours / theirs if higher_better else theirs / ours
        number = "{:>12,.0f}" if unit == "msg/s" else "{:>12,.1f}"
        print(
            f"{label + ' ' + unit:<26} {number.format(ours)} {number.format(theirs)}"
            f"  {ratio:>14.2f}x"
        )
    print("engine vs pyzmq: above 1 is better for the engine (speed, or the inverse of a time)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))))
    else:
        sys.exit("run it as `crossroads bench inproc`")
