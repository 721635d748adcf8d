"""Fault injection for the Pirate patterns: Lazy, Simple and Paranoid (RFC 6).

Queues and workers run as real processes (`python -m engine.patterns...`); clients run in this
process. Workers are killed with SIGKILL or frozen with SIGSTOP mid-run; every request must
still get its own reply. Every wait is bounded and wakes on a reply or a logged event.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import engine as zmq
import engine.asyncio
from engine.patterns.lazy_pirate import AsyncLazyPirateClient, LazyPirateClient, RequestFailed
from engine.patterns.paranoid_pirate import (
    PPP_HEARTBEAT,
    PPP_READY,
    AsyncParanoidPirateWorker,
    Outbox,
    QueueCore,
    WorkerPool,
)

SIMPLE = "engine.patterns.simple_pirate"
PARANOID = "engine.patterns.paranoid_pirate"
#: Short heartbeats keep the run fast: a dead worker is noticed within LIVENESS * INTERVAL.
INTERVAL_MS = "100"
LIVENESS = "3"
WAIT = 15.0
REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def start_queue(procs: Any, module: str, *extra: str, frontend: str = "", backend: str = "") -> Any:
    queue = procs.spawn(
        module,
        "queue",
        "--frontend",
        frontend or "tcp://127.0.0.1:0",
        "--backend",
        backend or "tcp://127.0.0.1:0",
        *extra,
    )
    match = queue.wait_for(r"listening frontend=(\S+) backend=(\S+)")
    return queue, match.group(1), match.group(2)


def ppp_queue(procs: Any, **endpoints: str) -> Any:
    return start_queue(
        procs, PARANOID, "--interval-ms", INTERVAL_MS, "--liveness", LIVENESS, **endpoints
    )


def ppp_worker(procs: Any, backend: str, name: str, *extra: str) -> Any:
    return procs.spawn(
        PARANOID,
        "worker",
        "--backend",
        backend,
        "--name",
        name,
        "--stamp",
        "--interval-ms",
        INTERVAL_MS,
        "--liveness",
        LIVENESS,
        "--reconnect-init-ms",
        "100",
        "--reconnect-max-ms",
        "400",
        *extra,
    )


def in_thread(fn: Callable[[], Any]) -> Callable[[float], Any]:
    """Run fn on a thread; returns a getter that waits (bounded) and re-raises its error."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def result(timeout: float = WAIT) -> Any:
        thread.join(timeout)
        assert not thread.is_alive(), "the call did not finish in time"
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


# -- Lazy Pirate ----------------------------------------------------------------------------------


def test_lazy_pirate_gives_up_without_server_then_succeeds_once_it_appears(
    procs: Any, free_endpoint: Callable[[], str]
) -> None:
    frontend = free_endpoint()
    with LazyPirateClient(frontend, timeout=0.3, retries=1) as client:
        started = time.monotonic()
        with pytest.raises(RequestFailed) as failure:
            client.request([b"anyone?"])
        assert failure.value.attempts == 2
        assert time.monotonic() - started >= 0.55  # two full tries, no early exit
        assert client.resets == 2  # a fresh socket after each timeout

        resets = client.resets
        pending = in_thread(lambda: client.request([b"action", b"42"], retries=50))
        # Start the server only once a try has already failed: the retry must find it.
        deadline = time.monotonic() + WAIT
        while client.resets == resets:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _, _, backend = start_queue(procs, SIMPLE, frontend=frontend)
        procs.spawn(SIMPLE, "worker", "--backend", backend)
        assert pending() == [b"action", b"42"]


def test_lazy_pirate_validator_skips_stale_replies() -> None:
    ctx = zmq.Context.instance()
    server = ctx.socket(zmq.ROUTER)
    server.linger = 0
    endpoint = server.bind("tcp://127.0.0.1:0")

    def serve() -> None:
        client, empty, action_id, body = server.recv_multipart()
        server.send_multipart([client, empty, b"old-id", b"stale"])  # e.g. a duplicate
        server.send_multipart([client, empty, action_id, body])

    served = in_thread(serve)
    try:
        with LazyPirateClient(endpoint, timeout=WAIT, retries=0) as client:
            reply = client.request([b"id-7", b"move"], validator=lambda r: r[0] == b"id-7")
            assert reply == [b"id-7", b"move"]
            assert client.resets == 0
        served()
    finally:
        server.close(linger=0)


@pytest.mark.parametrize("face", ["sync", "asyncio"])
def test_a_try_whose_send_cannot_go_out_times_out_too(
    face: str, free_endpoint: Callable[[], str]
) -> None:
    """A send with no peer to take it (IMMEDIATE and nobody listening here; a CURVE server
    that refused a plaintext handshake, as libzmq, is the same) is bounded by the try's
    timeout: `crossroads ping` against the wrong kind of server fails, never hangs."""
    endpoint = free_endpoint()
    if face == "sync":
        context = zmq.Context()
        context.immediate = 1
        try:
            with LazyPirateClient(endpoint, timeout=0.2, retries=1, context=context) as client:
                pending = in_thread(lambda: client.request(b"anyone?"))
                with pytest.raises(RequestFailed) as failure:
                    pending()
                assert failure.value.attempts == 2
        finally:
            context.destroy(linger=0)
        return

    async def no_taker() -> None:
        context = engine.asyncio.Context()
        context.immediate = 1
        try:
            async with AsyncLazyPirateClient(
                endpoint, timeout=0.2, retries=1, context=context
            ) as client:
                with pytest.raises(RequestFailed) as failure:
                    await client.request(b"anyone?")
                assert failure.value.attempts == 2
        finally:
            context.destroy(linger=0)

    asyncio.run(asyncio.wait_for(no_taker(), WAIT))


def test_async_lazy_pirate_client(procs: Any, free_endpoint: Callable[[], str]) -> None:
    frontend = free_endpoint()

    async def no_server() -> None:
        async with AsyncLazyPirateClient(frontend, timeout=0.2, retries=1) as client:
            with pytest.raises(RequestFailed):
                await client.request(b"hello")

    asyncio.run(asyncio.wait_for(no_server(), WAIT))
    _, _, backend = start_queue(procs, SIMPLE, frontend=frontend)
    procs.spawn(SIMPLE, "worker", "--backend", backend)

    async def with_server() -> list[list[bytes]]:
        async with AsyncLazyPirateClient(frontend, timeout=2.0, retries=5) as client:
            return [await client.request([b"n", b"%d" % i]) for i in range(20)]

    replies = asyncio.run(asyncio.wait_for(with_server(), WAIT * 2))
    assert replies == [[b"n", b"%d" % i] for i in range(20)]


# -- Simple Pirate --------------------------------------------------------------------------------


def test_simple_pirate_recovers_from_killed_workers(procs: Any) -> None:
    queue, frontend, backend = start_queue(procs, SIMPLE)
    rng = random.Random(6)
    live: list[tuple[str, Any]] = []
    names = iter(f"sp{i}" for i in range(100))

    def spawn() -> None:
        name = next(names)
        live.append((name, procs.spawn(SIMPLE, "worker", "--backend", backend, "--identity", name)))
        queue.wait_for(rf"worker-ready {name}$")

    for _ in range(3):
        spawn()
    with LazyPirateClient(frontend, timeout=0.5, retries=10) as client:
        for i in range(200):
            if i and i % 40 == 0:
                _, victim = live.pop(rng.randrange(len(live)))
                victim.kill()
                spawn()
            body = [b"req", b"%d" % i]
            assert client.request(body) == body
    assert queue.stop() == 0  # SIGTERM: clean exit


# -- Paranoid Pirate ------------------------------------------------------------------------------


def test_paranoid_pirate_answers_1000_requests_while_workers_are_sigkilled(procs: Any) -> None:
    queue, frontend, backend = ppp_queue(procs)
    rng = random.Random(1)
    live: dict[str, Any] = {}
    counter = iter(range(1000))

    def spawn() -> str:
        i = next(counter)
        name = f"w{i}"
        # Mix both faces; 10 ms of work keeps workers busy, so kills catch requests in flight.
        extra = ["--work-ms", "10"] + (["--async"] if i % 2 else [])
        live[name] = ppp_worker(procs, backend, name, *extra)
        return name

    queue.wait_all([rf"worker-ready {spawn()}-1$" for _ in range(4)])

    clients, per_client, kills = 4, 250, 9
    total = clients * per_client
    done = 0
    progress = threading.Condition()
    replies: list[tuple[bytes, list[bytes]]] = []

    def client_run(c: int) -> None:
        nonlocal done
        with LazyPirateClient(frontend, timeout=2.0, retries=5) as client:
            for j in range(per_client):
                rid = b"%d-%d" % (c, j)
                reply = client.request([b"req", rid], validator=lambda r, rid=rid: r[1:2] == [rid])
                with progress:
                    replies.append((rid, reply))
                    done += 1
                    progress.notify_all()

    results = [in_thread(lambda c=c: client_run(c)) for c in range(clients)]
    killed, spawned = [], []
    for k in range(kills):
        with progress:
            target = (k + 1) * total // (kills + 1)
            assert progress.wait_for(lambda t=target: done >= t, WAIT), f"stuck at {done}"
            assert done < total  # the kill lands mid-run
        # Only workers the queue has taken in: killing one still starting up proves nothing.
        name = rng.choice(sorted(n for n in live if queue.count(rf"worker-ready {n}-1$")))
        live.pop(name).signal(signal.SIGKILL)
        killed.append(name)
        spawned.append(spawn())  # a replacement, so the run can complete
    for result in results:
        result(WAIT * 3)

    assert len(replies) == total
    assert len({rid for rid, _ in replies}) == total
    for rid, reply in replies:
        assert reply[:2] == [b"req", rid] and len(reply) == 3, reply
    answered_by = {reply[2].decode() for _, reply in replies}
    assert answered_by & set(spawned)  # replacements took over from the killed workers
    # The queue noticed every death (a failed send, or heartbeat expiry), re-sent what the
    # dead workers held, and took the replacements in.
    queue.wait_all([rf"worker-(lost|expired) {name}-1$" for name in killed], from_start=True)
    queue.wait_all([rf"worker-ready {name}-1$" for name in spawned], from_start=True)
    assert queue.count(r"requeued \d+ request") >= 1


def test_paranoid_queue_redispatches_the_request_of_a_dead_worker(procs: Any) -> None:
    queue, frontend, backend = ppp_queue(procs)
    # The asyncio worker heartbeats during its (very long) job, so only the kill ends it.
    slow = ppp_worker(procs, backend, "slow", "--async", "--work-ms", "600000", "-v")
    queue.wait_for(r"worker-ready slow-1$")
    with LazyPirateClient(frontend, timeout=WAIT, retries=0) as client:
        pending = in_thread(lambda: client.request([b"job", b"1"]))
        slow.wait_for(r"job from")
        slow.signal(signal.SIGKILL)
        queue.wait_for(r"worker-(lost|expired) slow-1$")
        ppp_worker(procs, backend, "fast")
        assert pending() == [b"job", b"1", b"fast"]  # no client retry: the queue re-sent it
    queue.wait_for(r"requeued 1 request")


def test_paranoid_async_worker_heartbeats_through_a_long_job(procs: Any) -> None:
    queue, frontend, backend = ppp_queue(procs)
    # Each job lasts 3x the worker's expiry time (LIVENESS * INTERVAL).
    ppp_worker(procs, backend, "patient", "--async", "--work-ms", "900")
    queue.wait_for(r"worker-ready patient-1$")
    with LazyPirateClient(frontend, timeout=WAIT, retries=0) as client:
        assert client.request([b"long"]) == [b"long", b"patient"]
        assert client.request([b"again"]) == [b"again", b"patient"]
    assert queue.count(r"worker-(expired|lost)") == 0
    assert queue.count(r"requeued") == 0


def test_paranoid_queue_expires_a_frozen_worker(procs: Any) -> None:
    queue, frontend, backend = ppp_queue(procs)
    frozen = ppp_worker(procs, backend, "frozen")
    ppp_worker(procs, backend, "alive")
    queue.wait_all([r"worker-ready frozen-1$", r"worker-ready alive-1$"])

    frozen.signal(signal.SIGSTOP)
    queue.wait_for(r"worker-expired frozen-1$")
    with LazyPirateClient(frontend, timeout=WAIT, retries=0) as client:
        # No retries allowed: a single request sent to the frozen worker would fail the test.
        for i in range(30):
            assert client.request([b"%d" % i]) == [b"%d" % i, b"alive"]

        # Thawed, it finds the queue silent towards it, reconnects and says READY again.
        frozen.signal(signal.SIGCONT)
        queue.wait_for(r"worker-ready frozen-2$")
        stamps = {client.request([b"%d" % i])[1] for i in range(10)}
        assert stamps == {b"alive", b"frozen"}  # LRU: both share the work again


def test_paranoid_worker_reconnects_with_backoff_after_queue_restart(procs: Any) -> None:
    queue, frontend, backend = ppp_queue(procs)
    worker = ppp_worker(procs, backend, "w")
    queue.wait_for(r"worker-ready w-1$")
    with LazyPirateClient(frontend, timeout=WAIT, retries=0) as client:
        assert client.request([b"before"]) == [b"before", b"w"]

    queue.signal(signal.SIGKILL)
    # With no queue, each try fails after LIVENESS silent intervals; the delay doubles to the cap.
    for delay in ("0.100", "0.200", "0.400", "0.400"):
        worker.wait_for(rf"queue-lost reconnect-in={delay}")

    queue, _, _ = ppp_queue(procs, frontend=frontend, backend=backend)
    match = queue.wait_for(r"worker-ready (w-\d+)$")
    assert match.group(1) != "w-1"  # a fresh socket, not the old connection
    with LazyPirateClient(frontend, timeout=WAIT, retries=0) as client:
        assert client.request([b"after"]) == [b"after", b"w"]
    assert queue.stop() == 0
    assert worker.stop() == 0


def test_bounded_queue_replies_busy_when_full(procs: Any) -> None:
    queue, frontend, backend = start_queue(
        procs, PARANOID, "-v", "--max-pending", "1", "--busy-reply", "try later"
    )
    # No workers: the first request waits in the queue, the second finds it full.
    with LazyPirateClient(frontend, timeout=WAIT, retries=0) as waiting:
        pending = in_thread(lambda: waiting.request([b"first"]))
        queue.wait_for(r"queued a request \(1 pending\)")
        with LazyPirateClient(frontend, timeout=WAIT, retries=0) as refused:
            assert refused.request([b"second"]) == [b"try later"]
        ppp_worker(procs, backend, "late")
        assert pending() == [b"first", b"late"]


def test_worker_pool_tracks_requests_and_requeues_on_expiry() -> None:
    pool = WorkerPool(interval=1.0, liveness=3, max_pending=2)
    pool.worker_ready(b"a", now=0.0)
    pool.worker_ready(b"b", now=0.5)
    assert pool.submit([b"c1", b"", b"x"]) and pool.submit([b"c2", b"", b"y"])
    assert not pool.submit([b"c3", b"", b"z"])  # full
    assert pool.dispatch() == [(b"a", [b"c1", b"", b"x"]), (b"b", [b"c2", b"", b"y"])]
    assert pool.heartbeat(b"b", now=2.0) and not pool.heartbeat(b"ghost", now=2.0)
    assert pool.purge(now=3.0) == [b"a"]  # silent for 3 intervals
    assert list(pool.pending) == [[b"c1", b"", b"x"]]  # a's request is back at the front
    assert pool.complete(b"b", now=3.1) == [b"c2", b"", b"y"]
    assert pool.dispatch() == [(b"b", [b"c1", b"", b"x"])]
    assert pool.complete(b"a", now=3.2) is None  # a stale reply from the dead worker


def test_worker_pool_credit_lets_workers_hold_several_requests_in_turns() -> None:
    pool = WorkerPool(interval=1.0, liveness=3)
    pool.worker_ready(b"a", now=0.0, credit=3)
    pool.worker_ready(b"b", now=0.0, credit=2)
    requests = [[b"c%d" % i, b"", b"job"] for i in range(6)]
    for request in requests:
        pool.submit(request)
    # Turns, one request each, until each credit is spent; the sixth waits.
    assert [w for w, _ in pool.dispatch()] == [b"a", b"b", b"a", b"b", b"a"]
    assert list(pool.pending) == [requests[5]] and pool.held_count == 5
    # A reply is matched to its request by its envelope, in any order, and returns a credit.
    assert pool.complete(b"a", now=0.1, reply=[b"c4", b"", b"done"]) == requests[4]
    assert pool.complete(b"a", now=0.1, reply=[b"nobody", b"", b"done"]) is None
    assert pool.dispatch() == [(b"a", requests[5])]
    # A worker that dies gives back everything it held, oldest first, at the queue's front.
    assert pool.remove(b"a") == requests[0]
    assert list(pool.pending) == [requests[0], requests[2], requests[5]]
    assert pool.requeued == 3


def test_queue_core_reads_the_credit_of_a_ready() -> None:
    core = QueueCore(WorkerPool())
    core.from_backend([b"w", PPP_READY, b"4"], now=0.0)
    core.from_backend([b"v", PPP_READY], now=0.0)  # plain RFC 6: one at a time
    assert core.pool.workers[b"w"].credit == 4 and core.pool.workers[b"v"].credit == 1
    out = Outbox()
    for i in range(6):
        out.backend.extend(core.from_frontend([b"c%d" % i, b"", b"x"], now=0.0).backend)
    assert [msg[0] for msg in out.backend] == [b"w", b"v", b"w", b"w", b"w"]
    core.from_backend([b"x", PPP_READY, b"lots"], now=0.0)  # not a credit: ignored
    assert b"x" not in core.pool


# -- wire compatibility and command line -----------------------------------------------------------


@pytest.mark.interop
def test_libzmq_client_and_worker_through_paranoid_queue(procs: Any) -> None:
    pyzmq = pytest.importorskip("zmq")
    queue, frontend, backend = ppp_queue(procs)
    ctx = pyzmq.Context()
    try:
        worker = ctx.socket(pyzmq.DEALER)
        worker.connect(backend)
        worker.send(PPP_READY)
        queue.wait_for(r"worker-ready ")
        client = ctx.socket(pyzmq.REQ)
        client.connect(frontend)
        client.send_multipart([b"hi", b"there"])
        seen_heartbeat = False
        deadline = time.monotonic() + WAIT
        while True:
            assert worker.poll(int((deadline - time.monotonic()) * 1000)), "no request"
            msg = worker.recv_multipart()
            if msg == [PPP_HEARTBEAT]:
                seen_heartbeat = True
                continue
            break
        assert msg[1:] == [b"", b"hi", b"there"]
        worker.send_multipart([*msg, b"!"])
        assert client.poll(int(WAIT * 1000))
        assert client.recv_multipart() == [b"hi", b"there", b"!"]
        while not seen_heartbeat:  # heartbeats keep coming every interval
            assert worker.poll(int(WAIT * 1000))
            seen_heartbeat = worker.recv_multipart() == [PPP_HEARTBEAT]
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("module", [SIMPLE, PARANOID])
def test_cli_help(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 0 and "queue" in out.stdout and "worker" in out.stdout


class _PollSpy:
    """A worker's socket that notes the timeout of every poll."""

    def __init__(self, sock: Any, timeouts: list[int]) -> None:
        self._sock, self._timeouts = sock, timeouts

    def poll(self, timeout: int) -> Any:
        self._timeouts.append(timeout)
        return self._sock.poll(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _SpiedWorker(AsyncParanoidPirateWorker):
    polls: list[int]

    def _connect(self) -> tuple[Any, list[bytes]]:
        sock, ready = super()._connect()
        return _PollSpy(sock, self.polls), ready


@contextlib.asynccontextmanager
async def _silent_queue() -> AsyncIterator[tuple[Any, Any, str]]:
    """An asyncio context and a ROUTER that plays a queue which never answers; its endpoint."""
    ctx = zmq.asyncio.Context()
    queue = ctx.socket(zmq.ROUTER)
    try:
        yield ctx, queue, queue.bind("tcp://127.0.0.1:0")
    finally:
        queue.close(linger=0)
        ctx.term()


def test_paranoid_async_worker_sleeps_until_its_heartbeat_and_stop_wakes_it() -> None:
    """An idle async worker waits for work until its next heartbeat (an hour here) in one
    wait, not in slices (each slice is a wake-up of an idle process): stop() must wake that
    wait, and the back-off after a lost queue too."""

    async def scenario() -> None:
        async with _silent_queue() as (ctx, queue, backend):
            worker = _SpiedWorker(backend, interval=3600.0, context=ctx)
            worker.polls = []
            running = asyncio.create_task(worker.run())
            assert (await asyncio.wait_for(queue.recv_multipart(), WAIT))[1:] == [PPP_READY]
            while not worker.polls:
                await asyncio.sleep(0.01)
            assert worker.polls and min(worker.polls) > 3_500_000  # ms: the heartbeat's wait
            worker.stop()
            await asyncio.wait_for(running, WAIT)  # an hour, had stop() not woken it

            # Lost queue: the worker backs off for an hour; stop() wakes that sleep too.
            lossy = AsyncParanoidPirateWorker(
                backend,
                interval=0.05,
                liveness=1,
                reconnect_init=3600.0,
                reconnect_max=7200.0,
                context=ctx,
            )
            running = asyncio.create_task(lossy.run())
            # The back-off doubles when it starts: then the worker sleeps it.
            while lossy.core.backoff == 3600.0 or lossy._sleeping is None:
                await asyncio.sleep(0.01)
            lossy.stop()
            await asyncio.wait_for(running, WAIT)

    asyncio.run(scenario())


def test_a_cancelled_async_worker_is_cancelled_not_stopped() -> None:
    """stop() swallows only the cancellation it made: a task cancelled by its owner ends
    cancelled, as any asyncio task would."""

    async def scenario() -> None:
        async with _silent_queue() as (ctx, queue, backend):
            worker = AsyncParanoidPirateWorker(backend, interval=3600.0, context=ctx)
            running = asyncio.create_task(worker.run())
            await asyncio.wait_for(queue.recv_multipart(), WAIT)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(running, WAIT)

    asyncio.run(scenario())
