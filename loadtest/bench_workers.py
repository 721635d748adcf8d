"""The two ends of each benchmark, run in child processes (see loadtest.bench).

Every role is written once against the pyzmq API, so the same code drives the engine and pyzmq:
`Job.impl` picks the module (`engine` or `zmq`) and `Job.face` the sync or asyncio flavour. A
child reports to the parent through one queue as `(kind, payload)`: "endpoint" once bound,
"result" from the measuring side, "error" with a traceback, and with `Job.profile` set a
"profile" report from each end (see loadtest.bench_probe). Ends that must stay up after their
last message (senders, REP, PUB) wait for the parent's `done` event, so nothing queued is lost.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import statistics
import traceback
from dataclasses import dataclass, replace
from time import perf_counter, perf_counter_ns, sleep
from types import ModuleType
from typing import Any

from loadtest.bench_probe import Probe

#: Milliseconds a closing socket may spend writing what is still queued.
LINGER_MS = 1000


@dataclass(frozen=True)
class Job:
    """What one child process does; picklable, so it crosses the spawn boundary."""

    role: str  # a key of _ROLES: "thr_recv", "thr_send", ..., "mem_router", "mem_dealers"
    impl: str  # "engine" or "pyzmq"
    face: str  # "sync" or "asyncio"
    address: str  # where to bind (binding roles) or the resolved endpoint (connecting roles)
    size: int = 16
    count: int = 1000  # messages (throughput) or timed round trips (latency)
    warmup: int = 0  # untimed round trips before the timed ones (latency)
    wait_s: float = 60.0  # longest wait for the parent's "done", so no child outlives a hang
    peers: int = 0  # subscribers (fan-out)
    profile: str = ""  # "", "calls" or "switches" (see loadtest.bench_probe)
    #: "null", or "curve": the binding end is the CURVE server, the connecting end the client.
    mechanism: str = "null"
    #: Z85 keys for CURVE: server public, server secret, client public, client secret.
    keys: tuple[bytes, ...] = ()

    def with_address(self, address: str) -> Job:
        return replace(self, address=address)


class Signals:
    """What the parent shares with both ends: the report queue and two events."""

    def __init__(self, queue: Any, done: Any, go: Any, probe: Probe) -> None:
        self.queue = queue
        self.done = done  # the parent has its result: ends may close
        self.go = go  # fan-out: every subscriber is connected, publishing may start
        self.probe = probe


def worker_main(job: Job, queue: Any, done: Any, go: Any) -> None:
    """Process entry point: run one role and report, never raising into multiprocessing."""
    try:
        probe = Probe(job.profile)
        probe.install()  # before any socket, so that the I/O threads are counted too
        sig = Signals(queue, done, go, probe)
        base, ctx_mod = _modules(job)
        runner = _ROLES[job.role]
        if job.face == "asyncio":
            asyncio.run(runner(job, base, ctx_mod, sig, True))
        else:
            # One coroutine body per role serves both faces; with aio=False it never suspends,
            # so a single send(None) runs it to completion without an event loop.
            _drive(runner(job, base, ctx_mod, sig, False))
        if job.profile:
            queue.put(("profile", {"role": job.role, **probe.counted}))
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


def _secure(sock: Any, base: Any, job: Job, server: bool) -> None:
    """CURVE on both ends, with the option names pyzmq and the engine share; no ZAP handler,
    so the server takes any client (the cost measured is the encryption's)."""
    if job.mechanism != "curve":
        return
    server_public, server_secret, client_public, client_secret = job.keys
    if server:
        sock.setsockopt(base.CURVE_SECRETKEY, server_secret)
        sock.setsockopt(base.CURVE_SERVER, 1)
    else:
        sock.setsockopt(base.CURVE_SERVERKEY, server_public)
        sock.setsockopt(base.CURVE_PUBLICKEY, client_public)
        sock.setsockopt(base.CURVE_SECRETKEY, client_secret)
    if sock.getsockopt(base.MECHANISM) != base.CURVE:
        raise RuntimeError("the socket did not take CURVE")


def _endpoint(sock: Any, base: ModuleType) -> str:
    # LAST_ENDPOINT, not bind()'s return value: pyzmq's bind returns a context manager.
    value = sock.getsockopt(base.LAST_ENDPOINT)
    return value.decode() if isinstance(value, bytes) else str(value)


def _close(ctx: Any, sock: Any) -> None:
    sock.close(linger=LINGER_MS)
    ctx.destroy(linger=LINGER_MS)


async def thr_recv(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """PULL: bind, then time from the first to the last message (libzmq's local_thr)."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.PULL)
    try:
        _secure(sock, base, job, server=True)
        sock.bind(job.address)
        sig.queue.put(("endpoint", _endpoint(sock, base)))
        first = await _recv_n(sock, 1, aio)
        sig.probe.start()
        start = perf_counter()
        last = await _recv_n(sock, job.count - 1, aio) if job.count > 1 else first
        elapsed = perf_counter() - start
        sig.probe.stop()
        if len(first) != job.size or len(last) != job.size:
            raise RuntimeError(f"expected {job.size}-byte messages, got {len(first)}/{len(last)}")
        sig.queue.put(("result", _rate(job.count, elapsed, job.size)))
    finally:
        _close(ctx, sock)


def _rate(count: int, elapsed: float, size: int) -> dict[str, float]:
    # The first message only starts the clock, so count-1 messages fill the interval.
    rate = (count - 1) / elapsed if elapsed > 0 else float("inf")
    return {
        "messages": count,
        "seconds": elapsed,
        "msg_per_s": rate,
        "mbit_per_s": rate * size * 8 / 1e6,
    }


async def thr_send(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """PUSH: connect and send `count` messages as fast as the socket takes them."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.PUSH)
    try:
        _secure(sock, base, job, server=False)
        sock.connect(job.address)
        payload = b"x" * job.size
        # The receiver's clock starts at the first message, so ours starts just before it.
        await _send_n(sock, payload, 1, aio)
        sig.probe.start()
        await _send_n(sock, payload, job.count - 1, aio)
        await _wait_done(sig.done, job, aio)  # counts what the I/O thread still does, too
        sig.probe.stop()
    finally:
        _close(ctx, sock)


async def lat_rep(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """REP: bind and echo every request (libzmq's local_lat)."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.REP)
    try:
        _secure(sock, base, job, server=True)
        sock.bind(job.address)
        sig.queue.put(("endpoint", _endpoint(sock, base)))
        await _echo_n(sock, job.warmup, aio)
        sig.probe.start()
        await _echo_n(sock, job.count, aio)
        await _wait_done(sig.done, job, aio)
        sig.probe.stop()
    finally:
        _close(ctx, sock)


async def lat_req(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """REQ: connect, warm up, then time each of `count` round trips."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.REQ)
    try:
        _secure(sock, base, job, server=False)
        sock.connect(job.address)
        payload = b"x" * job.size
        await _round_trips(sock, payload, job.warmup, aio)
        sig.probe.start()
        samples = await _round_trips(sock, payload, job.count, aio)
        sig.probe.stop()
        sig.queue.put(("result", _latency_stats(samples)))
    finally:
        _close(ctx, sock)


#: Fan-out: how often the publisher sends a warm-up message while subscribers connect (s).
WARMUP_EVERY_S = 0.01


async def fan_pub(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """PUB: bind; send warm-ups until every subscriber has one, then `count` messages.

    High-water marks are off on both sides, so nothing is dropped and every subscriber gets
    every message: the measure is how fast one publisher feeds `peers` subscribers.
    """
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.PUB)
    try:
        sock.setsockopt(base.SNDHWM, 0)
        _secure(sock, base, job, server=True)
        sock.bind(job.address)
        sig.queue.put(("endpoint", _endpoint(sock, base)))
        warmup = b"w" * (job.size + 1)  # a size the subscribers tell apart and skip
        while not sig.go.is_set():
            await _send_n(sock, warmup, 1, aio)
            if aio:
                await asyncio.sleep(WARMUP_EVERY_S)
            else:
                sig.go.wait(WARMUP_EVERY_S)
        sig.probe.start()
        await _send_n(sock, b"x" * job.size, job.count, aio)
        await _wait_done(sig.done, job, aio)
        sig.probe.stop()
    finally:
        _close(ctx, sock)


async def fan_sub(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """`peers` SUB sockets in one process: time from the first message on the first socket to
    the last message on the last one, reading one socket after the other."""
    ctx = ctx_mod.Context()
    subs = []
    try:
        for _ in range(job.peers):
            sub = ctx.socket(base.SUB)
            sub.setsockopt(base.RCVHWM, 0)
            sub.setsockopt(base.SUBSCRIBE, b"")
            _secure(sub, base, job, server=False)
            sub.connect(job.address)
            subs.append(sub)
        for sub in subs:  # each has a warm-up message: every subscription reached the PUB
            await _recv_n(sub, 1, aio)
        sig.go.set()
        first = await _recv_data(subs[0], job.size, aio)
        sig.probe.start()
        start = perf_counter()
        last = first
        for i, sub in enumerate(subs):
            if i:
                await _recv_data(sub, job.size, aio)
            if job.count > 1:
                last = await _recv_n(sub, job.count - 1, aio)
        elapsed = perf_counter() - start
        sig.probe.stop()
        if len(last) != job.size:
            raise RuntimeError(f"expected {job.size}-byte messages, got {len(last)}")
        result = _rate(job.count, elapsed, job.size)
        result["deliveries_per_s"] = result["msg_per_s"] * job.peers
        sig.queue.put(("result", result))
    finally:
        for sub in subs:
            sub.close(linger=0)
        ctx.destroy(linger=0)


async def _recv_data(sub: Any, size: int, aio: bool) -> bytes:
    """The first message of the measured run on `sub`, skipping late warm-ups."""
    while True:
        msg = await _recv_n(sub, 1, aio)
        if len(msg) == size:
            return msg


#: Between two events, the publisher waits until every subscriber has the last one (at most).
EVENT_WAIT_S = 30.0


async def evt_pub(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """PUB: bind; warm up until every subscriber is subscribed; then `count` events, each sent
    once the subscribers have the one before (their process sets `go` again), carrying the
    monotonic clock of its send (the same clock in every process on Linux)."""
    ctx = ctx_mod.Context()
    sock = ctx.socket(base.PUB)
    try:
        sock.setsockopt(base.SNDHWM, 0)
        sock.bind(job.address)
        sig.queue.put(("endpoint", _endpoint(sock, base)))
        warmup = b"w" * (job.size + 1)
        while not sig.go.is_set():
            await sock.send(warmup)
            await asyncio.sleep(WARMUP_EVERY_S)
        loop = asyncio.get_running_loop()
        for _ in range(job.count):
            sig.go.clear()
            stamp = perf_counter_ns().to_bytes(8, "big")
            await sock.send(stamp + b"x" * max(0, job.size - 8))
            if not await loop.run_in_executor(None, sig.go.wait, EVENT_WAIT_S):
                raise RuntimeError("the subscribers did not get an event in time")
        await _wait_done(sig.done, job, aio)
    finally:
        _close(ctx, sock)


async def evt_sub(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """`peers` asyncio SUBs in one process, one task each: per event, the time from its send
    to its arrival on the last subscriber."""
    if not aio:
        raise RuntimeError("the event benchmark runs on the asyncio face only")
    ctx = ctx_mod.Context()
    subs = []
    size = max(job.size, 8)
    try:
        for _ in range(job.peers):
            sub = ctx.socket(base.SUB)
            sub.setsockopt(base.RCVHWM, 0)
            sub.setsockopt(base.SUBSCRIBE, b"")
            sub.connect(job.address)
            subs.append(sub)
        await asyncio.gather(*(sub.recv() for sub in subs))  # a warm-up each: all subscribed
        arrivals = [[0] * job.peers for _ in range(job.count)]
        remaining = [job.peers] * job.count

        async def listen(i: int, sub: Any) -> None:
            for n in range(job.count):
                while len(msg := await sub.recv()) != size:
                    pass  # a late warm-up
                arrivals[n][i] = perf_counter_ns() - int.from_bytes(msg[:8], "big")
                remaining[n] -= 1
                if not remaining[n]:
                    sig.go.set()  # the last subscriber has it: the next event may go

        sig.go.set()
        await asyncio.gather(*(listen(i, sub) for i, sub in enumerate(subs)))
        last = sorted(max(a) / 1e6 for a in arrivals)
        sig.queue.put(
            (
                "result",
                {
                    "events": job.count,
                    "p50_ms": statistics.median(last),
                    "max_ms": last[-1],
                    "first_p50_ms": statistics.median(min(a) / 1e6 for a in arrivals),
                },
            )
        )
    finally:
        for sub in subs:
            sub.close(linger=0)
        ctx.destroy(linger=0)


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


# -- memory per accepted connection (mem) ---------------------------------------------------------
#
# A server's memory grows with its connections: a game front holds one per player. The binding
# end (a ROUTER, where a server's clients arrive) reads its resident set before and after
# `count` peers have connected and each sent one message (so every handshake is over and every
# connection holds its pipe, codec and transport). One peer connects and is answered before the
# first reading, so that what the first connection sets up once (a loop's selector, the read
# buffer, lazily imported modules) is not counted per connection.

#: Peers in a memory run: enough that the growth dwarfs a page's rounding, few enough that
#: pyzmq's two descriptors per socket (the connection and its mailbox) stay under the limits.
MEM_CONNECTIONS = 1000
#: After the last message, time for what the loop finishes lazily (handshake timers, buffers
#: released) before the second reading.
MEM_SETTLE_S = 0.5


def rss_kib() -> int:
    """This process's resident set, KiB (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


async def _settle(aio: bool) -> None:
    gc.collect()
    if aio:
        await asyncio.sleep(MEM_SETTLE_S)
    else:
        sleep(MEM_SETTLE_S)


async def mem_router(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """ROUTER: bind; after the first peer's message, read RSS; after `count` more, again."""
    ctx = ctx_mod.Context()
    if job.impl == "pyzmq":
        ctx.set(base.MAX_SOCKETS, job.count + 64)
    sock = ctx.socket(base.ROUTER)
    recv = sock.recv_multipart
    try:
        sock.setsockopt(base.RCVHWM, 0)
        sock.bind(job.address)
        sig.queue.put(("endpoint", _endpoint(sock, base)))
        await recv() if aio else recv()  # the first peer: set-up paid once
        await _settle(aio)
        before = rss_kib()
        sig.go.set()
        for _ in range(job.count):
            await recv() if aio else recv()
        await _settle(aio)
        grown = rss_kib() - before
        sig.queue.put(("result", {"connections": job.count, "kib_per_conn": grown / job.count}))
        await _wait_done(sig.done, job, aio)
    finally:
        sock.close(linger=0)
        ctx.destroy(linger=0)


async def mem_dealers(job: Job, base: Any, ctx_mod: Any, sig: Signals, aio: bool) -> None:
    """One DEALER first; once the ROUTER has read its memory, `count` more, each sending one
    message; all stay connected until the parent has the result."""
    ctx = ctx_mod.Context()
    if job.impl == "pyzmq":
        ctx.set(base.MAX_SOCKETS, job.count + 64)
    socks: list[Any] = []
    try:
        for i in range(job.count + 1):
            if i == 1:
                await _wait_done(sig.go, job, aio)  # (any of the parent's events)
            sock = ctx.socket(base.DEALER)
            sock.setsockopt(base.LINGER, 0)
            sock.connect(job.address)
            socks.append(sock)
            await _send_n(sock, b"hello", 1, aio)
        await _wait_done(sig.done, job, aio)
    finally:
        for sock in socks:
            sock.close(linger=0)
        ctx.destroy(linger=0)


_ROLES = {
    "mem_router": mem_router,
    "mem_dealers": mem_dealers,
    "thr_recv": thr_recv,
    "thr_send": thr_send,
    "lat_rep": lat_rep,
    "lat_req": lat_req,
    "fan_pub": fan_pub,
    "fan_sub": fan_sub,
    "evt_pub": evt_pub,
    "evt_sub": evt_sub,
}
