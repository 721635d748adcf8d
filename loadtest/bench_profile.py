"""`crossroads bench --profile`: Python calls and thread wake-ups per message, both ends together.

Each planned run is made twice more: once with every thread's calls counted (the profile hook
slows the code down, so no speed is shown), once counting voluntary context switches without
the hook (see loadtest.bench_probe). Figures are per message for thr, per round trip for lat and
per published message for fan, summed over both ends' processes and all their threads.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from loadtest.bench_pair import (
    BenchError,
    Run,
    address_for,
    jobs,
    progress,
    render_table,
    run_pair,
    unavailable,
)
from loadtest.bench_probe import CALLS, SWITCHES

UNITS = {
    "thr": "message",
    "lat": "round trip",
    "fan": "published message",
    "evt": "event",
}


def per_unit(run: Run, profiles: list[dict[str, Any]], key: str) -> float:
    """Sum over both ends, divided by what the run counts (messages or round trips)."""
    total = sum(p.get(key, 0) for p in profiles)
    return total / max(run.count - (1 if run.bench == "thr" else 0), 1)


def run_profile(args: argparse.Namespace, runs: list[Run]) -> int:
    runs = [run for run in runs if run.bench in UNITS]  # mem counts bytes, not calls
    if not runs:
        print(
            "crossroads bench: --profile counts calls per message: nothing to count in mem",
            file=sys.stderr,
        )
        return 2
    ipc_dir = Path(tempfile.mkdtemp(prefix="crossroads-bench-"))
    results: list[dict[str, Any]] = []
    failed = False
    try:
        for i, run in enumerate(runs, 1):
            row: dict[str, Any] = {
                "benchmark": f"{run.title.rsplit(' ', 2)[0]}",
                "per": UNITS[run.bench],
                "face": run.face,
                "impl": run.impl,
            }
            reason = unavailable(run.impl, run.face)
            for mode in (CALLS, SWITCHES):
                progress(f"[{i}/{len(runs)}] {run.title}: counting {mode} ... ")
                if reason is not None:
                    row[mode] = None
                    progress(reason + "\n")
                    continue
                binder, connecter = jobs(
                    run, address_for(args.transport, ipc_dir), args.timeout, mode
                )
                try:
                    outcome = run_pair(binder, connecter, args.timeout)
                except BenchError as exc:
                    failed = True
                    row[mode] = None
                    progress(f"error: {str(exc).splitlines()[0]}\n")
                    print(f"error in {run.title}: {exc}", file=sys.stderr)
                    continue
                key = "calls" if mode == CALLS else "switches"
                row[mode] = per_unit(run, outcome.profiles, key)
                progress(f"{row[mode]:,.2f} per {UNITS[run.bench]}\n")
            results.append(row)
    finally:
        shutil.rmtree(ipc_dir, ignore_errors=True)
    if args.json:
        print(
            json.dumps(
                {"suite": "engine-profile", "transport": args.transport, "rows": results}, indent=2
            )
        )
    else:
        print(
            f"crossroads bench --profile: {args.transport}; both ends, all their threads; "
            "wake-ups = voluntary context switches"
        )
        print(table(results))
    return 1 if failed else 0


def table(results: list[dict[str, Any]]) -> str:
    header = (
        "benchmark",
        "face",
        "per",
        "engine calls",
        "pyzmq calls",
        "engine wake-ups",
        "pyzmq wake-ups",
    )
    by_key: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in results:
        by_key.setdefault((r["benchmark"], r["face"]), {})[r["impl"]] = r
    body = []
    for (bench, face), impls in by_key.items():
        eng, ref = impls.get("engine", {}), impls.get("pyzmq", {})
        per = (eng or ref).get("per", "")
        body.append(
            (
                bench,
                face,
                per,
                _fmt(eng.get(CALLS)),
                _fmt(ref.get(CALLS)),
                _fmt(eng.get(SWITCHES)),
                _fmt(ref.get(SWITCHES)),
            )
        )
    return render_table(header, body, left=3)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
