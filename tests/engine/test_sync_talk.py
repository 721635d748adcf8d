"""The talk's examples, written as the ZeroMQ Guide writes them, with only the import changed.

PUB/SUB 1-1 and 1-N with topic filtering, REQ/REP 1-1 and 1-N (round robin across two servers),
client started before its server, and inproc across threads sharing one context. Servers run in
threads where the Guide runs separate processes; every wait is bounded (RCVTIMEO, deadlines).
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import LaterEndpoint

import engine as zmq

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

#: Bound on any single blocking receive, in ms: a broken engine fails instead of hanging.
WAIT_MS = 10_000
#: Bound on a whole exchange, in seconds.
WAIT_S = 15.0


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    """A context whose sockets time out rather than hang; destroyed (linger 0) afterwards."""
    ctx = zmq.Context()
    ctx.rcvtimeo = WAIT_MS  # a context-wide socket default, as pyzmq allows
    ctx.sndtimeo = WAIT_MS
    yield ctx
    ctx.destroy(linger=0)


def start(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


# -- PUB/SUB --------------------------------------------------------------------------------------


def test_weather_update_1_to_1(context: zmq.Context) -> None:
    """wuserver/wuclient: the client subscribes to one zip code and sees only its updates."""
    publisher = context.socket(zmq.PUB)
    endpoint = publisher.bind("tcp://127.0.0.1:*")
    stop = threading.Event()

    def wuserver() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            zipcode = rng.randrange(9990, 10010)
            temperature = rng.randrange(-80, 135)
            relhumidity = rng.randrange(10, 60)
            publisher.send_string(f"{zipcode} {temperature} {relhumidity}")
            if zipcode == 10009:
                stop.wait(0.001)  # pace the publisher a little; the subscriber needs no help

    server = start(wuserver)
    try:
        subscriber = context.socket(zmq.SUB)
        subscriber.connect(endpoint)
        zip_filter = "10001 "
        subscriber.setsockopt_string(zmq.SUBSCRIBE, zip_filter)
        updates = [subscriber.recv_string() for _ in range(5)]
    finally:
        stop.set()
        server.join(WAIT_S)
    assert all(u.startswith(zip_filter) for u in updates), updates
    temps = [int(u.split()[1]) for u in updates]
    assert all(-80 <= t < 135 for t in temps)
    subscriber.close()
    publisher.close()


def test_pubsub_1_to_n_topic_filtering(context: zmq.Context) -> None:
    """One publisher, three subscribers: each sees exactly the topics it subscribed to."""
    publisher = context.socket(zmq.PUB)
    endpoint = publisher.bind("tcp://127.0.0.1:*")
    wanted = {"weather": [b"weather"], "sports": [b"sports"], "everything": [b""]}
    subscribers = {}
    for name, topics in wanted.items():
        sub = context.socket(zmq.SUB)
        sub.connect(endpoint)
        for topic in topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        subscribers[name] = sub
    seen: dict[str, list[bytes]] = {name: [] for name in wanted}
    poller = zmq.Poller()
    for sub in subscribers.values():
        poller.register(sub, zmq.POLLIN)
    deadline = time.monotonic() + WAIT_S
    n = 0
    # Keep publishing until every subscriber has several messages (slow joiners are normal).
    while any(len(v) < 6 for v in seen.values()):
        assert time.monotonic() < deadline, {k: len(v) for k, v in seen.items()}
        for topic in (b"weather", b"sports", b"news"):
            publisher.send_multipart([topic, b"update %d" % n])
        n += 1
        for sock, _ in poller.poll(20):
            name = next(k for k, s in subscribers.items() if s is sock)
            while sock.poll(0):
                seen[name].append(sock.recv_multipart()[0])
    assert set(seen["weather"]) == {b"weather"}
    assert set(seen["sports"]) == {b"sports"}
    # The catch-all subscriber got every topic.
    assert set(seen["everything"]) == {b"weather", b"sports", b"news"}
    for sock in [publisher, *subscribers.values()]:
        sock.close()


# -- REQ/REP --------------------------------------------------------------------------------------


def hwserver(
    context: zmq.Context,
    endpoint: str,
    name: bytes,
    requests: int,
    bound: queue.Queue[str] | None = None,
) -> None:
    """The Guide's Hello World server: answer `requests` requests, then stop."""
    socket = context.socket(zmq.REP)
    endpoint = socket.bind(endpoint)
    if bound is not None:
        bound.put(endpoint)
    for _ in range(requests):
        message = socket.recv()
        socket.send(name + b" says World to " + message)
    socket.close()


def test_hello_world_1_to_1(context: zmq.Context) -> None:
    """hwclient/hwserver: ten requests, ten replies, in lock step."""
    bound: queue.Queue[str] = queue.Queue()
    server = start(hwserver, context, "tcp://127.0.0.1:*", b"server", 10, bound)
    endpoint = bound.get(timeout=WAIT_S)
    socket = context.socket(zmq.REQ)
    socket.connect(endpoint)
    replies = []
    for request in range(10):
        socket.send(b"Hello %d" % request)
        replies.append(socket.recv())
    assert replies == [b"server says World to Hello %d" % i for i in range(10)]
    server.join(WAIT_S)
    assert not server.is_alive()
    socket.close()


def test_hello_world_1_to_n_round_robin(context: zmq.Context) -> None:
    """One REQ connected to two REP servers: requests alternate between the servers."""
    bound: queue.Queue[str] = queue.Queue()
    servers = [start(hwserver, context, "tcp://*:*", name, 5, bound) for name in (b"A", b"B")]
    endpoints = [bound.get(timeout=WAIT_S).replace("0.0.0.0", "127.0.0.1") for _ in servers]
    socket = context.socket(zmq.REQ)
    for endpoint in endpoints:
        socket.connect(endpoint)
    answered_by = []
    for request in range(10):
        socket.send(b"Hello %d" % request)
        reply = socket.recv()
        assert reply.endswith(b"Hello %d" % request)
        answered_by.append(reply[:1])
    evens, odds = set(answered_by[0::2]), set(answered_by[1::2])
    assert len(evens) == 1 and len(odds) == 1 and evens != odds, answered_by
    for server in servers:
        server.join(WAIT_S)
        assert not server.is_alive()
    socket.close()


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_client_started_before_server(context: zmq.Context, transport: str, tmp_path: Path) -> None:
    """Connect before bind: the request waits, and is delivered once the server binds."""
    later = LaterEndpoint("tcp" if transport == "tcp" else f"ipc://{tmp_path}/hello.ipc")
    client = context.socket(zmq.REQ)
    client.connect(later.endpoint)
    client.send(b"Hello")  # nobody listens yet: queued, not lost
    assert client.poll(0, zmq.POLLIN) == 0
    server = start(hwserver, context, later.bind_now(), b"late server", 1)
    assert client.recv() == b"late server says World to Hello"
    server.join(WAIT_S)
    client.close()


# -- inproc across threads ------------------------------------------------------------------------


def test_inproc_bind_first_workers_in_threads(context: zmq.Context) -> None:
    """The sink binds first; workers in threads connect PUSH sockets to it and report."""
    sink = context.socket(zmq.PULL)
    sink.bind("inproc://sink")

    def worker(n: int) -> None:
        sender = context.socket(zmq.PUSH)
        sender.connect("inproc://sink")
        for i in range(10):
            sender.send_multipart([b"worker %d" % n, b"%d" % i])
        sender.close()  # default linger: the queued results are still delivered

    threads = [start(worker, n) for n in range(4)]
    results: dict[bytes, list[int]] = {}
    for _ in range(40):
        who, i = sink.recv_multipart()
        results.setdefault(who, []).append(int(i))
    assert results == {b"worker %d" % n: list(range(10)) for n in range(4)}
    for thread in threads:
        thread.join(WAIT_S)
    sink.close()


def test_inproc_connect_before_bind_across_threads(context: zmq.Context) -> None:
    """A thread connects and sends before the name is bound; the bind then gets the request."""
    sent = threading.Event()
    replies: list[bytes] = []

    def client() -> None:
        req = context.socket(zmq.REQ)
        req.connect("inproc://late-service")
        req.send(b"ping")
        sent.set()
        replies.append(req.recv())
        req.close()

    thread = start(client)
    assert sent.wait(WAIT_S)
    service = context.socket(zmq.REP)
    service.bind("inproc://late-service")
    assert service.recv() == b"ping"
    service.send(b"pong")
    thread.join(WAIT_S)
    assert replies == [b"pong"]
    service.close()


def test_inproc_req_rep_pair_of_threads(context: zmq.Context) -> None:
    """Request/reply between two threads of one context, many round trips."""
    ready = threading.Event()

    def server() -> None:
        rep = context.socket(zmq.REP)
        rep.bind("inproc://echo")
        ready.set()
        for _ in range(100):
            rep.send_multipart(rep.recv_multipart()[::-1])
        rep.close()

    thread = start(server)
    assert ready.wait(WAIT_S)
    req = context.socket(zmq.REQ)
    req.connect("inproc://echo")
    for i in range(100):
        req.send_multipart([b"%d" % i, b"", b"tail"])
        assert req.recv_multipart() == [b"tail", b"", b"%d" % i]
    thread.join(WAIT_S)
    assert not thread.is_alive()
    req.close()
