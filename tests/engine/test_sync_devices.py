"""Devices: zmq.proxy (with capture), proxy_steerable's control commands, and
zmq.devices.monitored_queue, each running in a thread as pyzmq programs run them."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq as pyzmq

import engine as zmq
from engine.devices import monitored_queue
from engine.utils.monitor import recv_monitor_message

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

WAIT_MS = 10_000
WAIT_S = 15.0


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    """A context whose sockets time out rather than hang; destroyed (linger 0) afterwards."""
    context = zmq.Context()
    context.rcvtimeo = WAIT_MS  # default for every socket: fail rather than hang
    yield context
    context.destroy(linger=0)


class Device:
    """Runs a device function in a thread and records how it ended."""

    def __init__(self, fn: Callable[..., None], *sockets: Any) -> None:
        self.outcome: list[Any] = []
        self.thread = threading.Thread(target=self._run, args=(fn, sockets), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[..., None], sockets: tuple[Any, ...]) -> None:
        try:
            fn(*sockets)
            self.outcome.append("returned")
        except zmq.ContextTerminated:
            # A pyzmq device thread would close its sockets here so that term() can return;
            # the engine's term() closes them itself (a close from this thread racing term()
            # is a known engine bug, reported separately, so it is not done here).
            self.outcome.append("ETERM")
        except Exception as exc:
            self.outcome.append(exc)

    def join(self) -> list[Any]:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the device did not stop"
        return self.outcome


def publish_until_received(pub: zmq.Socket, sub: zmq.Socket, probe: bytes) -> None:
    """Send `probe` on `pub` until `sub` gets it; drop probes that were still in flight."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        pub.send(probe)
        if sub.poll(20):
            while sub.poll(50):
                assert sub.recv() == probe
            return
    raise AssertionError("subscription never reached the publisher")


def close_all(*socks: zmq.Socket) -> None:
    """Close the sockets the main thread used, before terminating the context."""
    for sock in socks:
        sock.close(linger=0)


# -- proxy ----------------------------------------------------------------------------------------


def test_proxy_forwards_captures_and_ends_with_eterm(ctx: zmq.Context) -> None:
    """ROUTER/DEALER broker with a capture socket; ctx.term() ends it with ContextTerminated."""
    frontend = ctx.socket(zmq.ROUTER)
    backend = ctx.socket(zmq.DEALER)
    capture = ctx.socket(zmq.PUSH)
    front_ep = frontend.bind("tcp://127.0.0.1:*")
    back_ep = backend.bind("tcp://127.0.0.1:*")
    capture.bind("inproc://capture")
    captured = ctx.socket(zmq.PULL)
    captured.connect("inproc://capture")
    device = Device(zmq.proxy, frontend, backend, capture)

    worker = ctx.socket(zmq.REP)
    worker.connect(back_ep)
    clients = [ctx.socket(zmq.REQ) for _ in range(3)]
    for client in clients:
        client.connect(front_ep)
    for round_ in range(3):
        for i, client in enumerate(clients):
            client.send_multipart([b"job %d.%d" % (round_, i), b""])
        for _ in clients:
            job, empty = worker.recv_multipart()
            worker.send_multipart([job.replace(b"job", b"done"), empty])
        for i, client in enumerate(clients):
            assert client.recv_multipart() == [b"done %d.%d" % (round_, i), b""]
    # Each message passed the capture socket once: 9 requests and 9 replies.
    seen = [captured.recv_multipart() for _ in range(18)]
    assert sum(m[-2].startswith(b"job") for m in seen) == 9
    assert sum(m[-2].startswith(b"done") for m in seen) == 9
    assert all(m[1] == b"" for m in seen)  # routing id, delimiter, body, empty frame

    close_all(worker, captured, *clients)
    ctx.term()
    assert device.join() == ["ETERM"]


def test_proxy_xsub_xpub_forwards_subscriptions(ctx: zmq.Context) -> None:
    """The Guide's weather proxy: subscriptions travel upstream through XPUB/XSUB."""
    xsub = ctx.socket(zmq.XSUB)
    xpub = ctx.socket(zmq.XPUB)
    upstream = xsub.bind("tcp://127.0.0.1:*")
    downstream = xpub.bind("tcp://127.0.0.1:*")
    device = Device(zmq.proxy, xsub, xpub)
    publisher = ctx.socket(zmq.PUB)
    publisher.connect(upstream)
    subscriber = ctx.socket(zmq.SUB)
    subscriber.connect(downstream)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"10001 ")
    publish_until_received(publisher, subscriber, b"10001 probe")
    for zipcode in (b"10002", b"10001", b"99999", b"10001"):
        publisher.send(zipcode + b" 21 40")
    publisher.send(b"10001 end")
    got = []
    while (msg := subscriber.recv()) != b"10001 end":
        got.append(msg)
    assert got == [b"10001 21 40", b"10001 21 40"]
    close_all(publisher, subscriber)
    ctx.term()
    assert device.join() == ["ETERM"]


# -- proxy_steerable ------------------------------------------------------------------------------


def statistics(control: zmq.Socket) -> list[int]:
    """Ask a steerable proxy for its eight counters."""
    control.send(b"STATISTICS")
    frames = control.recv_multipart()
    assert len(frames) == 8 and all(len(f) == 8 for f in frames)
    return [struct.unpack("=Q", f)[0] for f in frames]


def test_proxy_steerable_pause_resume_statistics_terminate(ctx: zmq.Context) -> None:
    """PAUSE holds messages, RESUME releases them, STATISTICS counts, TERMINATE returns."""
    frontend = ctx.socket(zmq.PULL)
    backend = ctx.socket(zmq.PUSH)
    control_end = ctx.socket(zmq.PAIR)
    frontend.bind("inproc://front")
    backend.bind("inproc://back")
    control_end.bind("inproc://control")
    control = ctx.socket(zmq.PAIR)
    control.connect("inproc://control")
    device = Device(zmq.proxy_steerable, frontend, backend, None, control_end)
    source = ctx.socket(zmq.PUSH)
    source.connect("inproc://front")
    sink = ctx.socket(zmq.PULL)
    sink.connect("inproc://back")

    source.send(b"one")
    assert sink.recv() == b"one"
    assert statistics(control) == [1, 3, 0, 0, 0, 0, 1, 3]

    control.send(b"PAUSE")
    assert control.recv() == b""  # each command is answered (libzmq 4.3.5 does)
    source.send_multipart([b"held", b"back"])
    assert sink.poll(200) == 0  # paused: nothing moves
    assert statistics(control) == [1, 3, 0, 0, 0, 0, 1, 3]

    control.send(b"RESUME")
    assert control.recv() == b""
    assert sink.recv_multipart() == [b"held", b"back"]
    # frontend in: parts, bytes, out: parts, bytes; then the backend's four counters. Parts,
    # as libzmq counts them: the two-part message counts 2.
    assert statistics(control) == [3, 11, 0, 0, 0, 0, 3, 11]

    control.send(b"TERMINATE")
    assert control.recv() == b""
    assert device.join() == ["returned"]
    close_all(source, sink, control, frontend, backend, control_end)


# -- monitored_queue ------------------------------------------------------------------------------


def test_monitored_queue_router_dealer(ctx: zmq.Context) -> None:
    """Every message through the queue is published on the monitor, prefixed in/out."""
    in_socket = ctx.socket(zmq.ROUTER)
    out_socket = ctx.socket(zmq.DEALER)
    mon = ctx.socket(zmq.PUB)
    in_ep = in_socket.bind("tcp://127.0.0.1:*")
    out_ep = out_socket.bind("tcp://127.0.0.1:*")
    mon.bind("inproc://queue-monitor")
    watcher = ctx.socket(zmq.SUB)
    watcher.connect("inproc://queue-monitor")
    watcher.setsockopt(zmq.SUBSCRIBE, b"")
    publish_until_received(mon, watcher, b"probe")  # before the device owns `mon`
    device = Device(monitored_queue, in_socket, out_socket, mon, b"in", b"out")

    client = ctx.socket(zmq.REQ)
    client.connect(in_ep)
    worker = ctx.socket(zmq.REP)
    worker.connect(out_ep)
    client.send(b"question")
    assert worker.recv() == b"question"
    worker.send(b"answer")
    assert client.recv() == b"answer"
    prefix, rid, empty, body = watcher.recv_multipart()
    assert (prefix, empty, body) == (b"in", b"", b"question")
    assert watcher.recv_multipart() == [b"out", rid, b"", b"answer"]

    close_all(client, worker, watcher)
    ctx.term()
    assert device.join() == ["ETERM"]


def test_monitored_queue_router_router_swaps_addresses(ctx: zmq.Context) -> None:
    """Between two ROUTERs the first two frames are swapped, so a client can address a
    worker by identity and the worker sees who asked (pyzmq's documented behaviour)."""
    in_socket = ctx.socket(zmq.ROUTER)
    out_socket = ctx.socket(zmq.ROUTER)
    mon = ctx.socket(zmq.PUSH)
    in_ep = in_socket.bind("tcp://127.0.0.1:*")
    out_ep = out_socket.bind("tcp://127.0.0.1:*")
    mon.bind("inproc://rr-monitor")
    watcher = ctx.socket(zmq.PULL)
    watcher.connect("inproc://rr-monitor")
    events = out_socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)

    worker = ctx.socket(zmq.DEALER)
    worker.identity = b"W"
    worker.connect(out_ep)
    client = ctx.socket(zmq.DEALER)
    client.identity = b"C"
    client.connect(in_ep)
    event = recv_monitor_message(events)  # the out ROUTER knows "W" from here on
    assert event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
    device = Device(monitored_queue, in_socket, out_socket, mon)

    client.send_multipart([b"W", b"work"])
    assert worker.recv_multipart() == [b"C", b"work"]
    worker.send_multipart([b"C", b"result"])
    assert client.recv_multipart() == [b"W", b"result"]
    assert watcher.recv_multipart() == [b"in", b"W", b"C", b"work"]
    assert watcher.recv_multipart() == [b"out", b"C", b"W", b"result"]

    close_all(client, worker, watcher, events)
    ctx.term()
    assert device.join() == ["ETERM"]


@pytest.mark.parametrize("lib", [zmq, pyzmq], ids=["engine", "pyzmq"])
def test_a_req_socket_steers_a_proxy_as_in_libzmq(lib: Any) -> None:
    """libzmq 4.3.5 answers every command, so a REQ may steer: the engine's proxy answered
    only STATISTICS, and counted whole messages where libzmq counts their parts."""
    context = lib.Context()
    try:
        frontend, backend = context.socket(lib.ROUTER), context.socket(lib.DEALER)
        frontend.bind("inproc://steered-front")
        backend.bind("inproc://steered-back")
        control_end = context.socket(lib.REP)
        control_end.bind("inproc://steered-control")
        thread = threading.Thread(
            target=lib.proxy_steerable, args=(frontend, backend, None, control_end)
        )
        thread.start()
        control = context.socket(lib.REQ)
        control.connect("inproc://steered-control")
        client, worker = context.socket(lib.DEALER), context.socket(lib.DEALER)
        client.connect("inproc://steered-front")
        worker.connect("inproc://steered-back")
        for sock in (control, client, worker):
            sock.setsockopt(lib.RCVTIMEO, 10_000)
        client.send(b"req")
        request = worker.recv_multipart()  # [the client's routing id, b"req"]
        worker.send_multipart([request[0], b"rep"])
        assert client.recv() == b"rep"
        id_size = len(request[0])
        control.send(b"STATISTICS")
        counters = [struct.unpack("=Q", f)[0] for f in control.recv_multipart()]
        both_ways = [2, id_size + 3]
        assert counters == both_ways * 4  # each side: 2 parts in and out, same bytes
        for command in (b"PAUSE", b"RESUME", b"TERMINATE"):
            control.send(command)
            assert control.recv() == b""
        thread.join(10)
        assert not thread.is_alive()
    finally:
        context.destroy(linger=0)
