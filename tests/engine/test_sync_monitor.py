"""Socket monitoring: get_monitor_socket() and zmq.utils.monitor.recv_monitor_message see the
connection life cycle as libzmq reports it, with pyzmq's EVENT_* values."""

from __future__ import annotations

import importlib
import socket
import time
from typing import Any

import pytest
import zmq as pyzmq
from enginekit import LaterEndpoint

import engine as zmq
import engine.utils.monitor
from engine.utils.monitor import recv_monitor_message

pytestmark = pytest.mark.timeout(60)

WAIT_S = 15.0


def events_until(monitor: zmq.Socket, *wanted: int) -> list[dict[str, Any]]:
    """Read events until one of `wanted` arrives (within a deadline); all events read."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if monitor.poll(50):
            event = recv_monitor_message(monitor)
            seen.append(event)
            if event["event"] in wanted:
                return seen
    names = [zmq.Event(e["event"]).name for e in seen]
    raise AssertionError(f"none of {[zmq.Event(w).name for w in wanted]} among {names}")


def kinds(events: list[dict[str, Any]]) -> list[int]:
    """The event numbers of `events`."""
    return [e["event"] for e in events]


def test_event_constants_are_pyzmqs() -> None:
    """The EVENT_* values are pyzmq's; recv_monitor_message is importable as pyzmq's."""
    for name in (
        "CONNECTED", "CONNECT_DELAYED", "CONNECT_RETRIED", "LISTENING", "ACCEPTED", "CLOSED",
        "DISCONNECTED", "HANDSHAKE_SUCCEEDED", "HANDSHAKE_FAILED_PROTOCOL",
        "HANDSHAKE_FAILED_NO_DETAIL", "MONITOR_STOPPED", "ALL",
    ):  # fmt: skip
        assert getattr(zmq, f"EVENT_{name}") == getattr(pyzmq, f"EVENT_{name}")
    assert engine.utils.monitor.recv_monitor_message is zmq.recv_monitor_message


def test_connecting_side_life_cycle(ctx: zmq.Context) -> None:
    """CONNECT_DELAYED/RETRIED while nobody listens, CONNECTED and HANDSHAKE_SUCCEEDED once a
    peer binds, DISCONNECTED when it goes away."""
    later = LaterEndpoint()
    endpoint = later.endpoint
    dealer = ctx.socket(zmq.DEALER)
    dealer.reconnect_ivl = 20
    monitor = dealer.get_monitor_socket()
    dealer.connect(endpoint)
    seen = events_until(monitor, zmq.EVENT_CONNECT_RETRIED)
    assert zmq.EVENT_CONNECT_DELAYED in kinds(seen)
    assert all(e["endpoint"] == endpoint.encode() for e in seen)

    router = ctx.socket(zmq.ROUTER)
    router.bind(later.bind_now())
    seen = events_until(monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED)
    assert zmq.EVENT_CONNECTED in kinds(seen)
    assert kinds(seen).index(zmq.EVENT_CONNECTED) < len(seen) - 1  # connected, then handshake
    dealer.send(b"over the monitored link")
    router.rcvtimeo = int(WAIT_S * 1000)
    assert router.recv_multipart()[1] == b"over the monitored link"

    router.close(linger=0)
    seen = events_until(monitor, zmq.EVENT_DISCONNECTED)
    assert seen[-1]["endpoint"] == endpoint.encode()
    dealer.disable_monitor()
    monitor.close(linger=0)


def test_binding_side_life_cycle(ctx: zmq.Context) -> None:
    """LISTENING at bind, ACCEPTED and HANDSHAKE_SUCCEEDED per peer, DISCONNECTED when the peer
    leaves, CLOSED when the listener is unbound."""
    router = ctx.socket(zmq.ROUTER)
    monitor = router.get_monitor_socket()
    endpoint = router.bind("tcp://127.0.0.1:*")
    event = recv_monitor_message(monitor)
    assert event["event"] == zmq.EVENT_LISTENING
    assert event["endpoint"] == endpoint.encode()
    assert isinstance(event["value"], int)

    peer = ctx.socket(zmq.DEALER)
    peer.connect(endpoint)
    seen = events_until(monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED)
    assert zmq.EVENT_ACCEPTED in kinds(seen)
    peer.close(linger=0)
    events_until(monitor, zmq.EVENT_DISCONNECTED)

    router.unbind(endpoint)
    seen = events_until(monitor, zmq.EVENT_CLOSED)
    assert seen[-1]["endpoint"] == endpoint.encode()
    monitor.close(linger=0)


def test_monitor_with_pyzmq_peer(ctx: zmq.Context) -> None:
    """The engine's monitor reports a handshake with a real libzmq peer."""
    rep = ctx.socket(zmq.REP)
    monitor = rep.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
    endpoint = rep.bind("tcp://127.0.0.1:*")
    theirs = pyzmq.Context()
    try:
        req = theirs.socket(pyzmq.REQ)
        req.linger = 0
        req.connect(endpoint)
        seen = events_until(monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED)
        assert kinds(seen) == [zmq.EVENT_ACCEPTED, zmq.EVENT_HANDSHAKE_SUCCEEDED]
        req.send(b"ping")
        rep.rcvtimeo = int(WAIT_S * 1000)
        assert rep.recv() == b"ping"
        req.close()
    finally:
        theirs.destroy(linger=0)
    monitor.close(linger=0)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" + b"x" * 64,
        b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x02\x00" + b"\x00" * 52,  # ZMTP 2.0 greeting
    ],
    ids=["http", "zmtp2"],
)
def test_handshake_failure_for_a_peer_speaking_garbage(ctx: zmq.Context, garbage: bytes) -> None:
    """A peer that does not speak ZMTP 3 yields a HANDSHAKE_FAILED_* event."""
    router = ctx.socket(zmq.ROUTER)
    failures = (
        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
        zmq.EVENT_HANDSHAKE_FAILED_AUTH,
    )
    monitor = router.get_monitor_socket()
    endpoint = router.bind("tcp://127.0.0.1:*")
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT_S) as raw:
        raw.sendall(garbage)
        seen = events_until(monitor, *failures)
        assert zmq.EVENT_ACCEPTED in kinds(seen)
        assert zmq.EVENT_HANDSHAKE_SUCCEEDED not in kinds(seen)
    monitor.close(linger=0)


def test_event_filter_and_disable(ctx: zmq.Context) -> None:
    """Only the requested events are reported; after disable_monitor() none are."""
    pull = ctx.socket(zmq.PULL)
    monitor = pull.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    endpoint = pull.bind("tcp://127.0.0.1:*")  # LISTENING: filtered out
    push = ctx.socket(zmq.PUSH)
    push.connect(endpoint)
    seen = events_until(monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED)
    assert kinds(seen) == [zmq.EVENT_HANDSHAKE_SUCCEEDED]
    pull.disable_monitor()
    assert monitor.poll(0) == 0
    monitor.close(linger=0)


def _kinds_of(lib: Any, monitor: Any, count: int) -> list[str]:
    """The next `count` events' names, read from a monitor socket of `lib`."""
    reader = importlib.import_module(f"{lib.__name__}.utils.monitor")
    monitor.setsockopt(lib.RCVTIMEO, int(WAIT_S * 1000))
    return [lib.Event(reader.recv_monitor_message(monitor)["event"]).name for _ in range(count)]


@pytest.mark.parametrize("lib", [zmq, pyzmq], ids=["engine", "pyzmq"])
def test_a_connecters_events_come_as_libzmqs(lib: Any) -> None:
    """Each tcp attempt starts with CONNECT_DELAYED and ends with CONNECTED or CLOSED, and
    CONNECT_RETRIED comes before each wait to try again: the engine used to say
    CONNECT_DELAYED once, after the first failure, and nothing before CONNECTED."""
    context = lib.Context()
    try:
        refused = context.socket(lib.DEALER)
        refused.setsockopt(lib.RECONNECT_IVL, 20)
        watch = refused.get_monitor_socket()
        refused.connect(LaterEndpoint().endpoint)  # nobody listens there
        assert _kinds_of(lib, watch, 6) == ["CONNECT_DELAYED", "CLOSED", "CONNECT_RETRIED"] * 2

        router = context.socket(lib.ROUTER)
        router.bind("tcp://127.0.0.1:0")
        dealer = context.socket(lib.DEALER)
        dealer.setsockopt(lib.RECONNECT_IVL, 20)
        watch = dealer.get_monitor_socket()
        dealer.connect(router.getsockopt(lib.LAST_ENDPOINT).decode())
        assert _kinds_of(lib, watch, 3) == ["CONNECT_DELAYED", "CONNECTED", "HANDSHAKE_SUCCEEDED"]
        router.close(linger=0)
        assert _kinds_of(lib, watch, 3) == ["DISCONNECTED", "CONNECT_RETRIED", "CONNECT_DELAYED"]
    finally:
        context.destroy(linger=0)


def _events_of(lib: Any, monitor: Any, count: int) -> dict[str, int]:
    """The next `count` events of a monitor socket of `lib`, as {name: value}."""
    reader = importlib.import_module(f"{lib.__name__}.utils.monitor")
    monitor.setsockopt(lib.RCVTIMEO, int(WAIT_S * 1000))
    events = [reader.recv_monitor_message(monitor) for _ in range(count)]
    return {lib.Event(e["event"]).name: int(e["value"]) for e in events}


@pytest.mark.parametrize("lib", [zmq, pyzmq], ids=["engine", "pyzmq"])
def test_connection_events_carry_the_connections_descriptor(lib: Any) -> None:
    """libzmq's LISTENING, ACCEPTED, CONNECTED, DISCONNECTED and CLOSED carry the socket's
    file descriptor, so a program can pair a connection's arrival with its departure: the
    engine used to give 0 for all but LISTENING."""
    context = lib.Context()
    try:
        router = context.socket(lib.ROUTER)
        router_events = router.get_monitor_socket()
        router.bind("tcp://127.0.0.1:0")
        endpoint = router.getsockopt(lib.LAST_ENDPOINT).decode()
        dealer = context.socket(lib.DEALER)
        dealer_events = dealer.get_monitor_socket()
        dealer.connect(endpoint)
        arrived = _events_of(lib, router_events, 3)  # LISTENING, ACCEPTED, HANDSHAKE_SUCCEEDED
        connected = _events_of(lib, dealer_events, 3)  # CONNECT_DELAYED, CONNECTED, HANDSHAKE
        assert arrived["ACCEPTED"] > 2 and connected["CONNECTED"] > 2
        assert arrived["ACCEPTED"] != arrived["LISTENING"]
        dealer.close(linger=0)
        assert _events_of(lib, router_events, 1) == {"DISCONNECTED": arrived["ACCEPTED"]}
        router.unbind(endpoint)
        assert _events_of(lib, router_events, 1) == {"CLOSED": arrived["LISTENING"]}
    finally:
        context.destroy(linger=0)
