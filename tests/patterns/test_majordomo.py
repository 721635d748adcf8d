"""Majordomo (RFC 7) and MMI (RFC 8) under fault injection: real broker and worker processes,
SIGKILLed and restarted mid-run, hostile input, and the sans-I/O broker core under fuzzing.

Every wait is bounded by a deadline and ends on an event (a reply, a status change); every
process is killed by PID at teardown.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.patterns.majordomo import (
    AsyncMajordomoBroker,
    AsyncMajordomoClient,
    AsyncMajordomoWorker,
    BrokerCore,
    MajordomoClient,
    RequestTimeout,
)

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
#: Short heartbeats keep expiry waits brief; liveness 4 tolerates a busy two-core machine.
HEARTBEAT_MS = 250
LIVENESS = 4
EXPIRY_S = HEARTBEAT_MS * LIVENESS / 1000
#: Bound on any single wait (generous: other suites may share the machine).
WAIT = 20.0


class Processes:
    """Spawns `python -m engine.patterns.majordomo ...` and friends; kills them all at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.cluster: list[subprocess.Popen[str]] = []
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def spawn(self, module: str, *args: str, stdout: bool = False) -> subprocess.Popen[str]:
        log = open(self.tmp / f"proc-{len(self.cluster)}.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        log.close()  # the child holds its own copy
        self.cluster.append(proc)
        return proc

    def broker(self, bind: str = "tcp://127.0.0.1:0") -> tuple[subprocess.Popen[str], str]:
        proc = self.spawn(
            "engine.patterns.majordomo",
            "broker",
            "--bind",
            bind,
            "--heartbeat-ms",
            str(HEARTBEAT_MS),
            "--liveness",
            str(LIVENESS),
            stdout=True,
        )
        return proc, first_line(proc)

    def worker(self, endpoint: str, service: str, tag: str) -> subprocess.Popen[str]:
        return self.spawn(
            "engine.patterns.majordomo",
            "echo-worker",
            "--broker",
            endpoint,
            "--service",
            service,
            "--tag",
            tag,
            "--heartbeat-ms",
            str(HEARTBEAT_MS),
            "--liveness",
            str(LIVENESS),
            "--reconnect-ms",
            str(HEARTBEAT_MS),
        )

    def kill_all(self) -> None:
        for proc in self.cluster:
            if proc.poll() is None:
                proc.kill()
        for proc in self.cluster:
            try:
                proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                pass
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.kill_all()


class LateBoundClient:
    """A client whose broker endpoint is known only once the broker process has printed it."""

    def __init__(self) -> None:
        self.endpoint = ""
        self._mdp: MajordomoClient | None = None

    def connect(self, endpoint: str) -> None:
        self.close()
        self.endpoint = endpoint
        self._mdp = MajordomoClient(endpoint, timeout_ms=1000, retries=4)

    def request(self, service: str, *body: bytes) -> list[bytes]:
        assert self._mdp is not None
        return self._mdp.request(service, *body)

    def mmi(self, service: str) -> bytes:
        return self.request("mmi.service", service.encode())[0]

    def close(self) -> None:
        if self._mdp is not None:
            self._mdp.close()
            self._mdp = None


@pytest.fixture
def client() -> Iterator[LateBoundClient]:
    mdp = LateBoundClient()
    try:
        yield mdp
    finally:
        mdp.close()


def first_line(proc: subprocess.Popen[str], timeout: float = WAIT) -> str:
    """The first line a child prints, waiting at most `timeout`."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"process {proc.pid} printed nothing within {timeout}s")
    line = proc.stdout.readline().strip()
    assert line, f"process {proc.pid} exited with {proc.wait()}"
    return line


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Re-check `check` (each check is itself a request with its own timeout) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # pacing between polls of the broker; never relied on for ordering


def echo_via(client: LateBoundClient, service: str, payload: bytes) -> bytes:
    """Send `payload` to `service`, check it came back intact, and return the worker's tag."""
    reply = client.request(service, payload)
    assert len(reply) == 2 and reply[1] == payload, reply
    assert reply[0].startswith(service.encode() + b"-"), f"{service} answered by {reply[0]!r}"
    return reply[0].decode()


# -- routing by service under worker kills -------------------------------------------------------


def test_routing_survives_worker_kills_and_restarts(cluster: Processes, client: LateBoundClient):
    broker, endpoint = cluster.broker()
    client.connect(endpoint)
    workers = {
        tag: cluster.worker(endpoint, tag.split("-")[0], tag)
        for tag in ("alpha-0", "alpha-1", "beta-0", "beta-1")
    }
    wait_until(lambda: client.mmi("alpha") == b"200", "alpha workers")
    wait_until(lambda: client.mmi("beta") == b"200", "beta workers")
    assert client.mmi("gamma") == b"404"

    # Idle workers are used least-recently-first: once all four have registered, each takes
    # turns, and every reply comes from a worker of the service asked for.
    seen: set[str] = set()
    sent = 0

    def all_took_turns() -> bool:
        nonlocal sent
        sent += 1
        seen.add(echo_via(client, ("alpha", "beta")[sent % 2], b"round1-%d" % sent))
        return seen == set(workers)

    wait_until(all_took_turns, "every worker to take a turn")

    # Kill one alpha worker mid-run: traffic keeps flowing, and only alpha-1 answers alpha.
    workers["alpha-0"].send_signal(signal.SIGKILL)
    for i in range(20):
        tag = echo_via(client, ("alpha", "beta")[i % 2], b"round2-%d" % i)
        assert tag != "alpha-0" or i < 2  # at most a reply already on its way
    assert client.mmi("beta") == b"200"

    # Kill the last alpha worker: once it expires the broker says 404, and beta is unaffected.
    workers["alpha-1"].send_signal(signal.SIGKILL)
    wait_until(lambda: client.mmi("alpha") == b"404", "alpha to expire", EXPIRY_S + WAIT)
    assert client.mmi("beta") == b"200"
    assert echo_via(client, "beta", b"still-here").startswith("beta-")

    # Restart alpha: 200 again, and alpha requests are answered by the new worker only.
    cluster.worker(endpoint, "alpha", "alpha-2")
    wait_until(lambda: client.mmi("alpha") == b"200", "alpha restart")
    for i in range(6):
        assert echo_via(client, "alpha", b"round3-%d" % i) == "alpha-2"
    assert broker.poll() is None


def test_request_queues_until_a_worker_arrives(cluster: Processes, client: LateBoundClient):
    _, endpoint = cluster.broker()
    client.connect(endpoint)
    assert client.mmi("late") == b"404"
    ctx = engine.Context.instance()
    raw = ctx.socket(engine.DEALER)
    raw.linger = 0
    try:
        raw.connect(endpoint)
        raw.send_multipart([b"", b"MDPC01", b"late", b"queued"])
        assert raw.poll(300) == 0  # nobody can answer yet: the broker holds the request
        cluster.worker(endpoint, "late", "late-0")
        assert raw.poll(int(WAIT * 1000)), "queued request never answered"
        assert raw.recv_multipart() == [b"", b"MDPC01", b"late", b"late-0", b"queued"]
    finally:
        raw.close(0)


def test_worker_reregisters_after_broker_restart(cluster: Processes, client: LateBoundClient):
    broker, endpoint = cluster.broker()
    client.connect(endpoint)
    cluster.worker(endpoint, "phoenix", "phoenix-0")
    wait_until(lambda: client.mmi("phoenix") == b"200", "phoenix worker")
    broker.send_signal(signal.SIGKILL)
    broker.wait(WAIT)
    # Same port: the worker notices the silence, reconnects and sends READY again.
    _, again = cluster.broker(endpoint)
    assert again == endpoint
    client.connect(endpoint)
    wait_until(lambda: client.mmi("phoenix") == b"200", "phoenix to re-register")
    assert echo_via(client, "phoenix", b"risen") == "phoenix-0"


def test_clean_exit_on_sigterm(cluster: Processes, client: LateBoundClient):
    broker, endpoint = cluster.broker()
    client.connect(endpoint)
    worker = cluster.worker(endpoint, "polite", "polite-0")
    wait_until(lambda: client.mmi("polite") == b"200", "polite worker")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(WAIT) == 0
    # Its DISCONNECT unregisters it at once; waiting for expiry would also get here, only later.
    wait_until(lambda: client.mmi("polite") == b"404", "polite to leave")
    broker.send_signal(signal.SIGINT)
    assert broker.wait(WAIT) == 0


# -- hostile input --------------------------------------------------------------------------------

MALFORMED: list[list[bytes]] = [
    [b"garbage"],
    [b"", b""],
    [b"not-empty", b"MDPC01", b"echo", b"x"],
    [b"", b"MDPC01"],
    [b"", b"MDPC01", b"echo"],  # no body
    [b"", b"MDPC01", b"", b"x"],  # empty service name
    [b"", b"MDPC01", b"s" * 10_000, b"x"],  # absurd service name
    [b"", b"MDPX99", b"echo", b"x"],
    [b"", b"MDPW01"],
    [b"", b"MDPW01", b"\x09"],
    [b"", b"MDPW01", b"\x01"],  # READY without a service
    [b"", b"MDPW01", b"\x01", b"a", b"b"],
    [b"", b"MDPW01", b"\x03", b"client"],  # REPLY without envelope
    [b"", b"MDPW01", b"\x04", b"extra"],
    [b"", b"MDPW01", b"\x01\x02", b"echo"],
    [b"", b"MDPW01", b"", b"echo"],
]


def test_malformed_messages_do_not_crash_broker(cluster: Processes, client: LateBoundClient):
    broker, endpoint = cluster.broker()
    client.connect(endpoint)
    cluster.worker(endpoint, "echo", "echo-0")
    wait_until(lambda: client.mmi("echo") == b"200", "echo worker")
    ctx = engine.Context.instance()
    rogue = ctx.socket(engine.DEALER)
    rogue.linger = 0
    try:
        rogue.connect(endpoint)
        for msg in MALFORMED:
            rogue.send_multipart(msg)
        # Valid but unexpected worker commands from a stranger earn a DISCONNECT (RFC 7),
        # and so does a claim on the broker's own mmi.* namespace (RFC 8).
        for msg in (
            [b"", b"MDPW01", b"\x04"],
            [b"", b"MDPW01", b"\x03", b"someone", b"", b"forged"],
            [b"", b"MDPW01", b"\x01", b"mmi.service"],
        ):
            rogue.send_multipart(msg)
            assert rogue.poll(int(WAIT * 1000)), f"no DISCONNECT for {msg}"
            assert rogue.recv_multipart() == [b"", b"MDPW01", b"\x05"]
        # A registered worker that breaks protocol is disconnected too.
        rogue.send_multipart([b"", b"MDPW01", b"\x01", b"rogue"])
        wait_until(lambda: client.mmi("rogue") == b"200", "rogue to register")
        rogue.send_multipart([b"", b"MDPW01", b"\x01", b"rogue"])  # second READY
        assert rogue.poll(int(WAIT * 1000))
        assert rogue.recv_multipart() == [b"", b"MDPW01", b"\x05"]
        assert client.mmi("rogue") == b"404"
    finally:
        rogue.close(0)
    # Bytes that are not even ZMTP.
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT) as raw:
        raw.sendall(os.urandom(512))
    assert echo_via(client, "echo", b"unharmed") == "echo-0"
    assert client.mmi("mmi.nothing") == b"404"
    assert client.request("mmi.nothing", b"x") == [b"501"]
    assert broker.poll() is None


services = st.sampled_from([b"echo", b"other", b"mmi.service", b"mmi.x", b""])
client_ids = st.sampled_from([b"c1", b"c2"])
worker_ids = st.sampled_from([b"w1", b"w2"])
bodies = st.lists(st.binary(max_size=4), min_size=0, max_size=2)
# Mostly well-formed commands from peers in their roles (so the fuzzer reaches deep states),
# plus arbitrary frames from anyone.
traffic = st.one_of(
    st.tuples(client_ids, st.builds(lambda s, b: [b"", b"MDPC01", s, *b], services, bodies)),
    st.tuples(worker_ids, st.builds(lambda s: [b"", b"MDPW01", b"\x01", s], services)),
    st.tuples(
        worker_ids,
        st.builds(lambda c, b: [b"", b"MDPW01", b"\x03", c, b"", *b], client_ids, bodies),
    ),
    st.tuples(worker_ids, st.sampled_from([[b"", b"MDPW01", b"\x04"], [b"", b"MDPW01", b"\x05"]])),
    st.tuples(st.one_of(client_ids, worker_ids), st.lists(st.binary(max_size=8), max_size=6)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(traffic, st.floats(0, 0.2)), max_size=40))
def test_broker_core_never_raises_and_stays_consistent(script):
    core = BrokerCore(heartbeat_ms=100, liveness=3, request_ttl_ms=1000, max_queued=3)
    now = 0.0
    for (peer, msg), step in script:
        now += step
        out = core.handle([peer, *msg], now) + core.tick(now)
        for reply in out:
            assert len(reply) >= 2 and reply[0] in (b"w1", b"w2", b"c1", b"c2")
        queued = sum(len(s.requests) for s in core.services.values())
        # New requests stop at the cap; jobs taken back from the two workers may go past it.
        assert queued == core.queued <= 3 + 2
        for identity, worker in core.workers.items():
            assert identity in worker.service.workers
            assert (worker.job is None) == (identity in worker.service.idle)
            assert core.services[worker.service.name] is worker.service


# -- asyncio faces and interop -------------------------------------------------------------


def test_async_broker_worker_client_in_one_loop():
    async def scenario() -> None:
        ctx = engine.asyncio.Context()
        # Heartbeats every 0.1 s, expiry after 0.5 s of silence.
        broker = AsyncMajordomoBroker(
            "tcp://127.0.0.1:0", heartbeat_ms=100, liveness=5, context=ctx
        )
        worker = AsyncMajordomoWorker(
            broker.endpoint, "slow", heartbeat_ms=100, liveness=5, context=ctx
        )
        client = AsyncMajordomoClient(broker.endpoint, timeout_ms=5000, retries=1, context=ctx)

        async def handler(body: list[bytes]) -> list[bytes]:
            # Busy for several expiry spans: the worker must keep heartbeating meanwhile.
            await asyncio.sleep(1.5)
            return [b"done", *body]

        tasks = [asyncio.create_task(broker.run()), asyncio.create_task(worker.serve(handler))]
        try:
            while (await client.request("mmi.service", b"slow")) != [b"200"]:
                await asyncio.sleep(0.01)
            registered = set(broker.core.workers)
            assert await client.request("slow", b"a", b"b") == [b"done", b"a", b"b"]
            assert await client.request("slow", b"c") == [b"done", b"c"]
            # The same registration throughout: never expired, never made to re-register.
            assert set(broker.core.workers) == registered
            with pytest.raises(RequestTimeout):
                await AsyncMajordomoClient(
                    broker.endpoint, timeout_ms=100, retries=1, context=ctx
                ).request("nobody", b"x")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await worker.close()
            client.close()
            broker.close()
            ctx.destroy(0)

    asyncio.run(asyncio.wait_for(scenario(), 60))


@pytest.mark.interop
def test_libzmq_peers_speak_to_the_broker(cluster: Processes):
    """pyzmq (libzmq) REQ client and DEALER worker against our broker: the wire format is RFC 7."""
    zmq = pytest.importorskip("zmq")
    _, endpoint = cluster.broker()
    ctx = zmq.Context()
    worker = ctx.socket(zmq.DEALER)
    requester = ctx.socket(zmq.REQ)
    try:
        for sock in (worker, requester):
            sock.linger = 0
            sock.rcvtimeo = int(WAIT * 1000)
            sock.connect(endpoint)
        worker.send_multipart([b"", b"MDPW01", b"\x01", b"lib"])
        # The worker's READY and the client's request come over two connections, which nothing
        # orders: ask until the broker has seen the worker (404 until then, by RFC 8's MMI).
        deadline = time.monotonic() + WAIT
        while True:
            requester.send_multipart([b"MDPC01", b"mmi.service", b"lib"])
            answer = requester.recv_multipart()
            if answer[2] == b"200" or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert answer == [b"MDPC01", b"mmi.service", b"200"]
        requester.send_multipart([b"MDPC01", b"lib", b"ping"])
        while True:
            msg = worker.recv_multipart()
            if msg[2] != b"\x04":  # skip broker heartbeats
                break
        empty, header, command, client_addr, delimiter, body = msg
        assert (empty, header, command, delimiter, body) == (b"", b"MDPW01", b"\x02", b"", b"ping")
        worker.send_multipart([b"", b"MDPW01", b"\x03", client_addr, b"", b"pong"])
        assert requester.recv_multipart() == [b"MDPC01", b"lib", b"pong"]
        worker.send_multipart([b"", b"MDPW01", b"\x05"])
        requester.send_multipart([b"MDPC01", b"mmi.service", b"lib"])
        assert requester.recv_multipart() == [b"MDPC01", b"mmi.service", b"404"]
    finally:
        worker.close()
        requester.close()
        ctx.term()
