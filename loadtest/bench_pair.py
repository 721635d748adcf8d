"""One benchmark measurement: its two ends in two spawned processes, and what they report."""

from __future__ import annotations

import importlib
import multiprocessing
import queue as queue_mod
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.bench_workers import Job, worker_main

IMPLS = ("engine", "pyzmq")
NO_SYNC_FACE = "n/a (sync face not available)"
NO_PYZMQ = "pyzmq not installed"
NO_CURVE = "n/a (CURVE needs PyNaCl: pip install 'crossroads[curve]')"


def progress(text: str) -> None:
    """Progress goes to stderr, so stdout holds only the table (or the JSON)."""
    sys.stderr.write(text)
    sys.stderr.flush()


def render_table(header: tuple[str, ...], body: list[tuple[str, ...]], left: int) -> str:
    """Plain-text columns: the first `left` aligned left, the figures right."""
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        lefts = [c.ljust(w) for c, w in zip(cells[:left], widths[:left], strict=True)]
        rights = [c.rjust(w) for c, w in zip(cells[left:], widths[left:], strict=True)]
        return "  ".join(lefts + rights).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def fmt_size(size: int) -> str:
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


class BenchError(RuntimeError):
    """A benchmark that failed or hung; the message says which and why."""


# -- what is available ----------------------------------------------------------------------------


def unavailable(impl: str, face: str, mechanism: str = "null") -> str | None:
    """Why this implementation/face cannot run here, or None when it can."""
    if impl == "pyzmq":
        try:
            zmq = importlib.import_module("zmq")  # lazily: the runtime never requires pyzmq
        except ImportError:
            return NO_PYZMQ
        if mechanism == "curve" and not zmq.has("curve"):
            return "n/a (this libzmq has no CURVE)"
        return None
    if mechanism == "curve":
        import engine

        if not engine.has("curve"):
            return NO_CURVE
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

    bench: str  # "thr", "lat", "fan", "evt" or "mem"
    size: int
    face: str
    impl: str
    count: int
    warmup: int = 0
    peers: int = 0  # fan: subscribers
    mechanism: str = "null"  # or "curve"
    status: str = "pending"  # "ok", "n/a" or "error"
    note: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    #: One metrics dict per round; `metrics` holds their medians.
    rounds: list[dict[str, float]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.label} {self.face} {self.impl}"

    @property
    def label(self) -> str:
        """What the run measures, without its face and implementation."""
        if self.bench == "mem":
            return f"mem, {self.count:,} connections,"
        return f"{self.bench} {fmt_size(self.size)}{self.to_peers}"

    @property
    def to_peers(self) -> str:
        return f" to {self.peers} SUBs" if self.bench in ("fan", "evt") else ""


@dataclass
class PairOutcome:
    result: dict[str, float]
    #: With profiling: what each end counted ({"role": ..., "calls"/"switches": n}).
    profiles: list[dict[str, Any]] = field(default_factory=list)


def run_pair(binder: Job, connecter: Job, timeout: float) -> PairOutcome:
    """Start the binding end, hand its endpoint to the connecting end, return the result.

    Both ends are always reaped: joined once the parent has the result, killed by PID if they
    do not exit, so a hung benchmark costs at most `timeout` and leaves nothing behind.
    """
    ctx = multiprocessing.get_context("spawn")  # no fork: a clean interpreter per end
    reports = ctx.Queue()
    done, go = ctx.Event(), ctx.Event()
    procs: list[Any] = []
    deadline = time.monotonic() + timeout
    ok = False
    try:
        procs.append(_start(ctx, binder, reports, done, go))
        endpoint = _expect(reports, "endpoint", procs, deadline, timeout)
        procs.append(_start(ctx, connecter.with_address(endpoint), reports, done, go))
        outcome = PairOutcome(_expect(reports, "result", procs, deadline, timeout))
        ok = True
    finally:
        done.set()  # lets senders and REP close: everything they sent has arrived
        # After a failure nothing is worth waiting for; a peer left running would only spin.
        grace = 5.0 if ok else 0.0
        for proc in reversed(procs):
            proc.join(timeout=grace)
            if proc.is_alive():
                proc.kill()  # SIGKILL to that PID only
                proc.join(timeout=5)
        if ok and binder.profile:
            outcome.profiles = _drain_profiles(reports, len(procs))
        reports.close()
        reports.cancel_join_thread()  # never block on a queue a killed child left half-read
    return outcome


def _drain_profiles(reports: Any, expected: int) -> list[dict[str, Any]]:
    """The ends' profile reports, sent as they exited (so after the result)."""
    profiles: list[dict[str, Any]] = []
    while len(profiles) < expected:
        try:
            kind, payload = reports.get(timeout=5)
        except queue_mod.Empty:
            raise BenchError("an end exited without its profile report") from None
        if kind == "profile":
            profiles.append(payload)
        elif kind == "error":
            raise BenchError(payload.rstrip())
    return profiles


def _start(ctx: Any, job: Job, reports: Any, done: Any, go: Any) -> Any:
    proc = ctx.Process(target=worker_main, args=(job, reports, done, go), daemon=True)
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


#: bench -> (binding role, connecting role)
ROLES = {
    "thr": ("thr_recv", "thr_send"),
    "lat": ("lat_rep", "lat_req"),
    "fan": ("fan_pub", "fan_sub"),
    "evt": ("evt_pub", "evt_sub"),
    "mem": ("mem_router", "mem_dealers"),
}


def jobs(run: Run, address: str, timeout: float, profile: str = "") -> tuple[Job, Job]:
    """The binding and the connecting end of one run."""
    # Children outlive a hang by a little at most; the parent kills them anyway.
    common = dict(
        impl=run.impl,
        face=run.face,
        size=run.size,
        count=run.count,
        warmup=run.warmup,
        peers=run.peers,
        wait_s=timeout,
        profile=profile,
        mechanism=run.mechanism,
        keys=curve_keys() if run.mechanism == "curve" else (),
    )
    bind_role, connect_role = ROLES[run.bench]
    return Job(role=bind_role, address=address, **common), Job(
        role=connect_role, address="", **common
    )


_KEYS: tuple[bytes, ...] = ()


def curve_keys() -> tuple[bytes, ...]:
    """One server and one client key pair for this invocation (Z85), made with the engine."""
    global _KEYS
    if not _KEYS:
        import engine

        _KEYS = (*engine.curve_keypair(), *engine.curve_keypair())
    return _KEYS


def address_for(transport: str, ipc_dir: Path) -> str:
    if transport == "ipc":
        return f"ipc://{ipc_dir / uuid.uuid4().hex[:12]}.sock"
    return "tcp://127.0.0.1:*"


def measure(run: Run, transport: str, ipc_dir: Path, timeout: float) -> None:
    """Add one round to `run` (or set a status and note saying why not)."""
    reason = unavailable(run.impl, run.face, run.mechanism)
    if reason is not None:
        run.status, run.note = "n/a", reason
        return
    if run.status == "error":
        return  # one failed round is enough to show the error
    binder, connecter = jobs(run, address_for(transport, ipc_dir), timeout)
    try:
        run.rounds.append(run_pair(binder, connecter, timeout).result)
    except BenchError as exc:
        run.status, run.note = "error", str(exc)
        return
    run.status = "ok"
    keys = run.rounds[0].keys()
    run.metrics = {k: statistics.median(r[k] for r in run.rounds) for k in keys}
