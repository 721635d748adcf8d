"""The engine's draft sockets against zeromq.js 6 (its bundled libzmq 4.3.5 has them).

RADIO/DISH both ways over udp unicast, udp multicast (two network namespaces) and tcp;
SERVER/CLIENT, SCATTER/GATHER and CHANNEL both ways over tcp; PEER (connect_peer); DGRAM over
udp. The engine side runs in this process, except across namespaces, where it runs the peer
script (tests/peers/zmq_peer.py --engine) inside one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from peerkit import LinePeer, free_udp_port
from pgmkit import frames_of, in_ns

import engine as zmq
from loadtest import netns

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

WAIT_MS = 10_000
#: libzmq 4.3.5's udp DISH reads the group length as a signed char and aborts on 128 or more
#: (see test_udp_codec_interop); groups sent to it stay below that.
LIBZMQ_DISH_GROUP = b"g" * 127


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def sock(ctx: zmq.Context, kind: int) -> zmq.Socket:
    s = ctx.socket(kind)
    s.rcvtimeo = s.sndtimeo = WAIT_MS
    return s


def until_delivered(send, peer: LinePeer) -> None:  # type: ignore[no-untyped-def]
    """Send probes until one arrives (a JOIN travelling to a RADIO, a connection coming up),
    then drop whatever probes are still on their way."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        send()
        try:
            peer.next_event("message", timeout=0.1)
            break
        except TimeoutError:
            assert time.monotonic() < deadline, "no probe ever arrived"
    time.sleep(0.2)  # the probes in flight arrive now, and are taken below
    while True:
        try:
            peer.next_event("message", timeout=0.05)
        except TimeoutError:
            return


def groups_and_bodies(events: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(bytes.fromhex(e["group"]), bytes.fromhex(e["frames"][0])) for e in events]


MESSAGES = [(b"weather", b"sunny"), (LIBZMQ_DISH_GROUP, b"long group"), (b"weather", b"x" * 7000)]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_engine_radio_to_zeromq_js_dish(ctx: zmq.Context, js_peer, transport: str) -> None:  # type: ignore[no-untyped-def]
    port = free_udp_port()
    endpoint = f"udp://127.0.0.1:{port}" if transport == "udp" else "tcp://127.0.0.1:*"
    dish = js_peer("dish", endpoint, "bind")
    for group in (b"weather", LIBZMQ_DISH_GROUP):
        dish.command(join=group.hex())
    radio = sock(ctx, zmq.RADIO)
    radio.connect(dish.events[0]["endpoint"] if transport == "tcp" else endpoint)
    until_delivered(lambda: radio.send(b"probe", group="weather"), dish)
    radio.send(b"not joined", group="news")
    for group, body in MESSAGES:
        radio.send(body, group=group)
    assert groups_and_bodies(dish.messages(len(MESSAGES))) == MESSAGES


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_zeromq_js_radio_to_engine_dish(ctx: zmq.Context, js_peer, transport: str) -> None:  # type: ignore[no-untyped-def]
    dish = sock(ctx, zmq.DISH)
    joined = {b"weather", b"G" * 255}  # libzmq sends 255-byte groups fine; the engine reads them
    for group in joined:
        dish.join(group)
    endpoint = dish.bind("udp://127.0.0.1:0" if transport == "udp" else "tcp://127.0.0.1:*")
    radio = js_peer("radio", endpoint, "connect")
    deadline = time.monotonic() + WAIT_MS / 1000
    while not dish.poll(100):  # over tcp the JOINs travel first
        radio.command(send=[b"probe".hex()], group=b"weather".hex())
        assert time.monotonic() < deadline
    while dish.poll(200):
        dish.recv()
    sent = [(b"news", b"not joined"), *MESSAGES, (b"G" * 255, b"the longest group")]
    for group, body in sent:
        radio.command(send=[body.hex()], group=group.hex())
    expected = [m for m in sent if m[0] in joined]
    got = []
    for _ in expected:
        frame = dish.recv(copy=False)
        got.append((frame.group.encode(), frame.bytes))
    assert got == expected


@pytest.mark.parametrize("direction", ["engine-radio", "js-radio"])
def test_radio_dish_over_multicast_between_hosts(
    direction: str, veth: netns.VethPair, js_peer, engine_peer
) -> None:  # type: ignore[no-untyped-def]
    """RADIO in one namespace, DISH in the other, one multicast group between them."""
    group_endpoint = "239.192.3.3:5557"
    a, b = veth.address_a, veth.address_b
    if direction == "engine-radio":
        dish = js_peer("dish", f"udp://{b};{group_endpoint}", "bind", spawn=in_ns(veth, veth.ns_b))
        radio = engine_peer(veth, veth.ns_a, "radio", f"udp://{a};{group_endpoint}", "connect")
    else:
        dish = engine_peer(veth, veth.ns_b, "dish", f"udp://{b};{group_endpoint}", "bind")
        radio = js_peer(
            "radio", f"udp://{a};{group_endpoint}", "connect", spawn=in_ns(veth, veth.ns_a)
        )
    dish.command(join=b"weather".hex())
    for group, body in [(b"news", b"not joined"), *MESSAGES]:
        radio.command(send=[body.hex()], group=group.hex())
    weather = [m for m in MESSAGES if m[0] == b"weather"]
    assert groups_and_bodies(dish.messages(len(weather))) == weather


def test_server_and_client_both_ways(ctx: zmq.Context, js_peer) -> None:  # type: ignore[no-untyped-def]
    # zeromq.js SERVER, engine CLIENT
    server = js_peer("server", "tcp://127.0.0.1:*", "bind")
    client = sock(ctx, zmq.CLIENT)
    client.connect(server.events[0]["endpoint"])
    client.send(b"request")
    (request,) = server.messages(1)
    assert bytes.fromhex(request["frames"][0]) == b"request" and request["routing_id"]
    server.command(send=[b"reply".hex()], routing_id=request["routing_id"])
    assert client.recv() == b"reply"
    # engine SERVER, zeromq.js CLIENTs: each named by its own routing id
    engine_server = sock(ctx, zmq.SERVER)
    endpoint = engine_server.bind("tcp://127.0.0.1:*")
    clients = [js_peer("client", endpoint, "connect") for _ in range(2)]
    ids = {}
    for i, c in enumerate(clients):
        c.command(send=[(b"from %d" % i).hex()])
    for _ in clients:
        frame = engine_server.recv(copy=False)
        ids[frame.bytes] = frame.routing_id
    assert len(set(ids.values())) == 2
    for i, c in enumerate(clients):
        engine_server.send(b"to %d" % i, routing_id=ids[b"from %d" % i])
        assert frames_of(c.messages(1)) == [[b"to %d" % i]]


def test_scatter_gather_both_ways(ctx: zmq.Context, js_peer) -> None:  # type: ignore[no-untyped-def]
    gather = js_peer("gather", "tcp://127.0.0.1:*", "bind")
    scatter = sock(ctx, zmq.SCATTER)
    scatter.connect(gather.events[0]["endpoint"])
    for i in range(5):
        scatter.send(b"job %d" % i)
    assert frames_of(gather.messages(5)) == [[b"job %d" % i] for i in range(5)]
    engine_gather = sock(ctx, zmq.GATHER)
    js_scatter = js_peer("scatter", engine_gather.bind("tcp://127.0.0.1:*"), "connect")
    for i in range(5):
        js_scatter.command(send=[(b"result %d" % i).hex()])
    assert [engine_gather.recv() for _ in range(5)] == [b"result %d" % i for i in range(5)]


def test_channel_both_ways(ctx: zmq.Context, js_peer) -> None:  # type: ignore[no-untyped-def]
    js_channel = js_peer("channel", "tcp://127.0.0.1:*", "bind")
    channel = sock(ctx, zmq.CHANNEL)
    channel.connect(js_channel.events[0]["endpoint"])
    channel.send(b"ping")
    assert frames_of(js_channel.messages(1)) == [[b"ping"]]
    js_channel.command(send=[b"pong".hex()])
    assert channel.recv() == b"pong"


def test_peer_connect_peer(ctx: zmq.Context, js_peer) -> None:  # type: ignore[no-untyped-def]
    """The engine's PEER names a libzmq PEER with connect_peer's id and reaches it. (zeromq.js
    gives its PEER no routing ids, so the answer comes back from the engine-only test.)"""
    js = js_peer("peer", "tcp://127.0.0.1:*", "bind")
    peer = sock(ctx, zmq.PEER)
    rid = peer.connect_peer(js.events[0]["endpoint"])
    assert rid != 0
    peer.send(b"hello", routing_id=rid)
    assert frames_of(js.messages(1)) == [[b"hello"]]


def test_dgram_both_ways(ctx: zmq.Context, js_peer) -> None:  # type: ignore[no-untyped-def]
    dgram = sock(ctx, zmq.DGRAM)
    ours = dgram.bind("udp://127.0.0.1:0").removeprefix("udp://")
    port = free_udp_port()
    js = js_peer("dgram", f"udp://127.0.0.1:{port}", "bind")
    # libzmq opens a udp endpoint on its I/O thread after zmq_bind has returned: a datagram
    # sent before that is lost (it was, once in CI). Probe until one arrives.
    to_js = f"127.0.0.1:{port}".encode()
    until_delivered(lambda: dgram.send_multipart([to_js, b"probe"]), js)
    dgram.send_multipart([to_js, b"ping"])
    (ping,) = js.messages(1)
    # Address frames are C strings in libzmq, NUL included; the engine writes them the same.
    assert [bytes.fromhex(f) for f in ping["frames"]] == [ours.encode() + b"\0", b"ping"]
    js.command(send=[ours.encode().hex(), b"pong".hex()])
    assert dgram.recv_multipart() == [f"127.0.0.1:{port}\0".encode(), b"pong"]
