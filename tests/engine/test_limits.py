"""The engine's limits for sockets bound where anybody can connect: MAX_CONNECTIONS (a bound
endpoint closes connections over the cap at once) and MAX_SUBSCRIPTIONS (an XPUB keeps at most
that many topics per peer), with real peers over tcp, libzmq's among them."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import pytest
import zmq as pyzmq

import engine
import engine.asyncio
from engine.sockets.subscriptions import Subscribers
from engine.utils.monitor import recv_monitor_message

WAIT_MS = 10_000


def _events(monitor: engine.Socket, want: int, deadline_s: float = 10.0) -> list[int]:
    seen: list[int] = []
    deadline = time.monotonic() + deadline_s
    while want not in seen and time.monotonic() < deadline:
        if monitor.poll(100):
            seen.append(recv_monitor_message(monitor)["event"])
    return seen


def test_max_connections_closes_the_extra_peer_before_its_greeting() -> None:
    ctx = engine.Context()
    ref = pyzmq.Context()
    try:
        router = ctx.socket(engine.ROUTER)
        router.setsockopt(engine.MAX_CONNECTIONS, 2)
        monitor = router.get_monitor_socket(
            engine.EVENT_ACCEPT_FAILED | engine.EVENT_HANDSHAKE_SUCCEEDED
        )
        endpoint = router.bind("tcp://127.0.0.1:0")
        peers = []
        for i in range(2):
            peer = ref.socket(pyzmq.DEALER)
            peer.linger = 0
            peer.connect(endpoint)
            peer.send(b"in %d" % i)
            peers.append(peer)
        got = {router.recv_multipart()[1] for _ in range(2) if router.poll(WAIT_MS)}
        assert got == {b"in 0", b"in 1"}
        extra = ref.socket(pyzmq.DEALER)
        extra.linger = 0
        extra.connect(endpoint)
        extra.send(b"over the cap")
        assert engine.EVENT_ACCEPT_FAILED in _events(monitor, engine.EVENT_ACCEPT_FAILED)
        assert not router.poll(300), "a connection over MAX_CONNECTIONS was served"
        # One leaves: a newcomer is served again (the cap counts live connections).
        peers[0].close()
        deadline = time.monotonic() + 10
        while True:
            late = ref.socket(pyzmq.DEALER)
            late.linger = 0
            late.connect(endpoint)
            late.send(b"after a departure")
            if router.poll(500):
                break
            late.close()
            assert time.monotonic() < deadline, "the freed slot was never reused"
        msg = router.recv_multipart()
        assert msg[1] in (b"after a departure", b"over the cap")
    finally:
        ctx.destroy(linger=0)
        ref.destroy(linger=0)


def test_max_subscriptions_keeps_a_peers_first_topics_only() -> None:
    ctx = engine.Context()
    ref = pyzmq.Context()
    try:
        pub = ctx.socket(engine.XPUB)
        pub.max_subscriptions = 3
        endpoint = pub.bind("tcp://127.0.0.1:0")
        sub = ref.socket(pyzmq.SUB)
        sub.linger = 0
        topics = [b"t%02d" % i for i in range(10)]
        for topic in topics:
            sub.subscribe(topic)
        sub.connect(endpoint)
        seen = []
        while len(seen) < 3 and pub.poll(WAIT_MS):
            seen.append(pub.recv())  # the application sees only the kept ones
        assert seen == [b"\x01" + t for t in topics[:3]]
        assert not pub.poll(300)
        for topic in topics:
            pub.send(topic + b" news")
        got = []
        while sub.poll(500):
            got.append(sub.recv())
        assert got == [t + b" news" for t in topics[:3]]
    finally:
        ctx.destroy(linger=0)
        ref.destroy(linger=0)


def test_subscribers_count_and_departure_touch_only_the_peer() -> None:
    subs: Subscribers[str] = Subscribers()
    for i in range(5):
        subs.add(b"a%d" % i, "alice")
    subs.add(b"a0", "bob")
    subs.add(b"a0", "alice")  # idempotent
    assert subs.count("alice") == 5 and subs.count("bob") == 1
    assert sorted(subs.remove_peer("alice")) == [b"a1", b"a2", b"a3", b"a4"]
    assert subs.count("alice") == 0 and subs.topics() == [b"a0"]
    assert subs.match(b"a0 x") == {"bob"}


@pytest.mark.parametrize("value", [-1, 0, 5])
def test_limits_read_back(value: int) -> None:
    ctx = engine.Context()
    try:
        sock = ctx.socket(engine.XPUB)
        sock.setsockopt(engine.MAX_SUBSCRIPTIONS, value)
        sock.max_connections = value
        assert sock.getsockopt(engine.MAX_SUBSCRIPTIONS) == value
        assert sock.max_connections == value
    finally:
        ctx.destroy(linger=0)


def _listen_backlog(endpoint: str) -> int:
    """A listening socket's backlog as the kernel holds it (ss's Send-Q for a listener)."""
    port = endpoint.rsplit(":", 1)[1]
    line = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(line[2])  # State, Recv-Q, Send-Q (the backlog), local address, ...


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a backlog")
def test_backlog_is_the_listen_backlog_on_both_faces() -> None:
    """BACKLOG reaches listen() on both faces. asyncio's create_server listens again, with
    its own default of 100 unless it is passed the option; a message through the endpoint
    shows the asyncio face's server is up before the backlog is read."""
    ctx = engine.Context()
    try:
        router = ctx.socket(engine.ROUTER)
        router.setsockopt(engine.BACKLOG, 7)
        assert _listen_backlog(router.bind("tcp://127.0.0.1:0")) == 7
        router.close(0)
    finally:
        ctx.term()

    assert asyncio.run(_asyncio_face_backlog(7)) == 7


async def _asyncio_face_backlog(backlog: int) -> int:
    """The kernel's backlog of an asyncio-face ROUTER given BACKLOG `backlog`, read once a
    message through it shows its server is up."""
    actx = engine.asyncio.Context()
    try:
        router = actx.socket(engine.ROUTER)
        router.setsockopt(engine.BACKLOG, backlog)
        endpoint = router.bind("tcp://127.0.0.1:0")
        dealer = actx.socket(engine.DEALER)
        dealer.connect(endpoint)
        await dealer.send(b"up")
        assert (await asyncio.wait_for(router.recv_multipart(), WAIT_MS / 1000))[1] == b"up"
        queue = _listen_backlog(endpoint)
        dealer.close(0)
        router.close(0)
        return queue
    finally:
        actx.term()


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a backlog")
def test_a_backlog_above_the_accept_batch_is_still_the_kernel_queue_on_the_asyncio_face() -> None:
    """asyncio accepts as many connections per loop pass as the backlog it is given: the face
    gives it ACCEPT_BATCH and then listens again with BACKLOG, so a reconnect storm waits in
    the kernel's queue rather than losing its SYNs, and is taken a batch per pass."""
    from engine.transport.stream import ACCEPT_BATCH

    backlog = ACCEPT_BATCH * 10
    assert asyncio.run(_asyncio_face_backlog(backlog)) == backlog
