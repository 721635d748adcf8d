"""The two ends of each benchmark, run in child processes (see loadtest.bench).

Every role is written once against the pyzmq API, so the same code drives the engine and pyzmq:
`Job.impl` picks the module (`engine` or `zmq`) and `Job.face` the sync or asyncio flavour. A
child reports to the parent through one queue as `(kind, payload)`: "endpoint" once bound,
"result" from the measuring side, "error" with a traceback. Ends that must stay up after their
last message (senders, REP) wait for the parent's `done` event, so nothing queued is lost.
"""

from __future__ import annotations

import asyncio
import importlib
import statistics
import traceback
from dataclasses import dataclass, replace
from time import perf_counter, perf_counter_ns
from types import ModuleType
from typing import Any

#: Milliseconds a closing socket may spend writing what is still queued.
LINGER_MS = 1000


@dataclass(frozen=True)
class Job:
    """What one child process does; picklable, so it crosses the spawn boundary."""

    role: str  # "thr_recv", "thr_send", "lat_rep" or "lat_req"
    impl: str  # "engine" or "pyzmq"
    face: str  # "sync" or "asyncio"
    address: str  # where to bind (binding roles) or the resolved endpoint (connecting roles)
    size: int = 16
    count: int = 1000  # messages (throughput) or timed round trips (latency)
    warmup: int = 0  # untimed round trips before the timed ones (latency)
    wait_s: float = 60.0  # longest wait for the parent's "done", so no child outlives a hang

    def with_address(self, address: str) -> Job:
        return replace(self, address=address)


def worker_main(job: Job, queue: Any, done: Any) -> None:
    """Process entry point: run one role and report, never raising into multiprocessing."""
    try:
        base, ctx_mod = _modules(job)
        runner = _ROLES[job.role]
        if job.face == "asyncio":
            asyncio.run(runner(job, base, ctx_mod, queue, done, True))
        else:
            # One coroutine body per role serves both faces; with aio=False it never suspends,
            # so a single send(None) runs it to completion without an event loop.
            _drive(runner(job, base, ctx_mod, queue, done, False))
    except BaseException:
        queue.put(("error", f"{job.role} ({job.impl} {job.face}):\n{traceback.format_exc()}"))


def _modules(job: Job) -> tuple[ModuleType, ModuleType]:
    """The constants module and the module whose Context to use for this job."""
    base = importlib.import_module("engine" if job.impl == "engine" else "zmq")
    if job.face == "asyncio":
        return base, importlib.import_module(f"{base.__name__}.asyncio")
    return base, base


def _drive(coro: Any) -> None:
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("a sync benchmark role awaited something")


async def _recv_n(sock: Any, n: int, aio: bool) -> bytes:
    """Receive n messages and return the last; one tight loop per face, so the sync face pays
    no coroutine overhead per message."""
    last = b""
    recv = sock.recv
    if aio:
        for _ in range(n):
            last = await recv()
    else:
        for _ in range(n):
            last = recv()
    return last


async def _send_n(sock: Any, payload: bytes, n: int, aio: bool) -> None:
    send = sock.send
    if aio:
        for _ in range(n):
            await send(payload)
    else:
        for _ in range(n):
            send(payload)


async def _echo_n(sock: Any, n: int, aio: bool) -> None:
    send, recv = sock.send, sock.recv
    if aio:
        for _ in range(n):
            await send(await recv())
    else:
        for _ in range(n):
            send(recv())


async def _round_trips(sock: Any, payload: bytes, n: int, aio: bool) -> list[int]:
    """Time n request/reply round trips, in nanoseconds each."""
    samples = [0] * n
    send, recv = sock.send, sock.recv
    clock = perf_counter_ns
    reply = payload
    if aio:
        for i in range(n):
            t0 = clock()
            await send(payload)
            reply = await recv()
            samples[i] = clock() - t0
    else:
        for i in range(n):
            t0 = clock()
            send(payload)
            reply = recv()
            samples[i] = clock() - t0
    if n and len(reply) != len(payload):
        raise RuntimeError(f"reply of {len(reply)} bytes, expected {len(payload)}")
    return samples


async def _wait_done(done: Any, job: Job, is_async: bool) -> None:
    """Stay up until the parent has its result; on asyncio, keep the loop turning meanwhile.

    The engine's asyncio face writes sends on a later loop pass, so blocking the loop here
    would strand the last messages in our queue.
    """
    if is_async:
        await asyncio.get_running_loop().run_in_executor(None, done.wait, job.wait_s)
    else:
        done.wait(job.wait_s)


def _endpoint(sock: Any, base: ModuleType) -> str:
    # LAST_ENDPOINT, not bind()'s return value: pyzmq's bind returns a context manager.
    value = sock.getsockopt(base.LAST_ENDPOINT)
    return value.decode() if isinstance(value, bytes) else str(value)


def _close(ctx: Any, sock: Any) -> None:
    sock.close(linger=LINGER_MS)
    ctx.destroy(linger=LINGER_MS)


async def thr_recv(job: Job, base: Any, ctx_mod: Any, queue: Any, done: Any, aio: bool) -> None:
    """PULL: bind, then time from the first to the last message (libzmq's local_thr)."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.PULL)
    try:
        sock.bind(job.address)
        queue.put(("endpoint", _endpoint(sock, base)))
        first = await _recv_n(sock, 1, aio)
        start = perf_counter()
        last = await _recv_n(sock, job.count - 1, aio) if job.count > 1 else first
        elapsed = perf_counter() - start
        if len(first) != job.size or len(last) != job.size:
            raise RuntimeError(f"expected {job.size}-byte messages, got {len(first)}/{len(last)}")
        # The first message only starts the clock, so count-1 messages fill the interval.
        rate = (job.count - 1) / elapsed if elapsed > 0 else float("inf")
        queue.put(
            (
                "result",
                {
                    "messages": job.count,
                    "seconds": elapsed,
                    "msg_per_s": rate,
                    "mbit_per_s": rate * job.size * 8 / 1e6,
                },
            )
        )
    finally:
        _close(ctx, sock)


async def thr_send(job: Job, base: Any, ctx_mod: Any, queue: Any, done: Any, aio: bool) -> None:
    """PUSH: connect and send `count` messages as fast as the socket takes them."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.PUSH)
    try:
        sock.connect(job.address)
        await _send_n(sock, b"x" * job.size, job.count, aio)
        await _wait_done(done, job, aio)
    finally:
        _close(ctx, sock)


async def lat_rep(job: Job, base: Any, ctx_mod: Any, queue: Any, done: Any, aio: bool) -> None:
    """REP: bind and echo every request (libzmq's local_lat)."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.REP)
    try:
        sock.bind(job.address)
        queue.put(("endpoint", _endpoint(sock, base)))
        await _echo_n(sock, job.warmup + job.count, aio)
        await _wait_done(done, job, aio)
    finally:
        _close(ctx, sock)


async def lat_req(job: Job, base: Any, ctx_mod: Any, queue: Any, done: Any, aio: bool) -> None:
    """REQ: connect, warm up, then time each of `count` round trips."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.REQ)
    try:
        sock.connect(job.address)
        payload = b"x" * job.size
        await _round_trips(sock, payload, job.warmup, aio)
        samples = await _round_trips(sock, payload, job.count, aio)
        queue.put(("result", _latency_stats(samples)))
    finally:
        _close(ctx, sock)


def _latency_stats(samples_ns: list[int]) -> dict[str, float]:
    us = sorted(s / 1000 for s in samples_ns)
    return {
        "round_trips": len(us),
        "mean_us": statistics.fmean(us),
        "p50_us": _percentile(us, 50),
        "p99_us": _percentile(us, 99),
        "max_us": us[-1],
    }


def _percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


_ROLES = {"thr_recv": thr_recv, "thr_send": thr_send, "lat_rep": lat_rep, "lat_req": lat_req}
