"""pyzmq's device classes (zmq.devices.ThreadDevice, ThreadProxy, ThreadMonitoredQueue,
ThreadProxySteerable, ProcessDevice, Device): the same lines run on the engine and on pyzmq."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 10_000
JOIN_S = 10.0


@pytest.fixture
def ctx(lib: Any) -> Iterator[Any]:
    """The test's own context, for its sockets and (through context_factory) the device's."""
    context = lib.Context()
    context.rcvtimeo = WAIT_MS
    context.linger = 0
    yield context
    context.destroy(linger=0)


def devices(lib: Any) -> Any:
    return importlib.import_module(f"{lib.__name__}.devices")


def end(device: Any, ctx: Any) -> None:
    """Terminate the device's context; its thread must end."""
    ctx.term()
    device.join(JOIN_S)
    assert not device.launcher.is_alive()


@LIBS
def test_a_thread_device_makes_its_sockets_and_queues_requests(lib: Any, ctx: Any) -> None:
    device = devices(lib).ThreadDevice(lib.QUEUE, lib.ROUTER, lib.DEALER)
    device.context_factory = lambda: ctx
    in_port = device.bind_in_to_random_port("tcp://127.0.0.1")
    out_port = device.bind_out_to_random_port("tcp://127.0.0.1")
    device.setsockopt_in(lib.RCVHWM, 100)
    device.start()
    client, worker = ctx.socket(lib.REQ), ctx.socket(lib.REP)
    client.connect(f"tcp://127.0.0.1:{in_port}")
    worker.connect(f"tcp://127.0.0.1:{out_port}")
    client.send(b"ping")
    assert worker.recv() == b"ping"
    worker.send(b"pong")
    assert client.recv() == b"pong"
    client.close()
    worker.close()
    end(device, ctx)


@LIBS
def test_a_thread_proxy_copies_what_passes_to_its_monitor(lib: Any, ctx: Any) -> None:
    device = devices(lib).ThreadProxy(lib.PULL, lib.PUSH, lib.PUSH)
    device.context_factory = lambda: ctx
    device.bind_in("inproc://proxy-in")
    device.bind_out("inproc://proxy-out")
    device.bind_mon("inproc://proxy-mon")
    device.start()
    source, sink, monitor = ctx.socket(lib.PUSH), ctx.socket(lib.PULL), ctx.socket(lib.PULL)
    for sock, name in ((source, "in"), (sink, "out"), (monitor, "mon")):
        sock.connect(f"inproc://proxy-{name}")  # queued until the device's thread binds it
    source.send_multipart([b"a", b"b"])
    assert sink.recv_multipart() == [b"a", b"b"]
    assert monitor.recv_multipart() == [b"a", b"b"]
    for sock in (source, sink, monitor):
        sock.close()
    end(device, ctx)


@LIBS
def test_a_thread_monitored_queue_names_each_direction(lib: Any, ctx: Any) -> None:
    device = devices(lib).ThreadMonitoredQueue(lib.ROUTER, lib.DEALER, lib.PUSH, b"asked", b"told")
    device.context_factory = lambda: ctx
    ports = [device.bind_in_to_random_port("tcp://127.0.0.1")]
    ports.append(device.bind_out_to_random_port("tcp://127.0.0.1"))
    ports.append(device.bind_mon_to_random_port("tcp://127.0.0.1"))
    device.start()
    client, worker, monitor = ctx.socket(lib.REQ), ctx.socket(lib.REP), ctx.socket(lib.PULL)
    for sock, port in zip((client, worker, monitor), ports, strict=True):
        sock.connect(f"tcp://127.0.0.1:{port}")
    client.send(b"ping")
    assert worker.recv() == b"ping"
    worker.send(b"pong")
    assert client.recv() == b"pong"
    asked, told = monitor.recv_multipart(), monitor.recv_multipart()
    assert (asked[0], asked[-1], told[0], told[-1]) == (b"asked", b"ping", b"told", b"pong")
    for sock in (client, worker, monitor):
        sock.close()
    end(device, ctx)


@LIBS
def test_a_steerable_thread_proxy_ends_on_terminate(lib: Any, ctx: Any) -> None:
    device = devices(lib).ThreadProxySteerable(lib.PULL, lib.PUSH, lib.PUB, lib.PAIR)
    device.context_factory = lambda: ctx
    for role in ("in", "out", "mon", "ctrl"):
        getattr(device, f"bind_{role}")(f"inproc://steered-{role}")
    device.start()
    control = ctx.socket(lib.PAIR)
    control.connect("inproc://steered-ctrl")
    control.send(b"TERMINATE")
    device.join(JOIN_S)
    assert not device.launcher.is_alive()
    control.close()


@LIBS
def test_a_process_device_forwards_from_its_own_process(lib: Any, ctx: Any) -> None:
    device = devices(lib).ProcessDevice(lib.QUEUE, lib.PULL, lib.PUSH)
    in_port = device.bind_in_to_random_port("tcp://127.0.0.1")
    out_port = device.bind_out_to_random_port("tcp://127.0.0.1")
    device.start()
    try:
        source, sink = ctx.socket(lib.PUSH), ctx.socket(lib.PULL)
        source.connect(f"tcp://127.0.0.1:{in_port}")
        sink.connect(f"tcp://127.0.0.1:{out_port}")
        source.send(b"across")
        assert sink.recv() == b"across"
        assert device.launcher.pid not in (None, 0)
    finally:
        device.launcher.kill()  # by its pid; a device runs until its context ends
        device.join(JOIN_S)
    assert not device.launcher.is_alive()


@LIBS
def test_a_device_needs_both_socket_types(lib: Any) -> None:
    with pytest.raises(TypeError):
        devices(lib).ThreadDevice(lib.QUEUE, lib.PULL)


@LIBS
def test_a_device_names_its_socket_types(lib: Any) -> None:
    device = devices(lib).Device(lib.QUEUE, lib.SUB, lib.PUB)
    assert (device.in_type, device.out_type, device.device_type) == (lib.SUB, lib.PUB, lib.QUEUE)


@LIBS
def test_an_out_type_below_zero_makes_one_socket_serve_both_sides(lib: Any, ctx: Any) -> None:
    """A REP device with no out socket answers each request with itself (the engine tried
    to make a socket of type -1, and its thread died)."""
    device = devices(lib).ThreadDevice(lib.QUEUE, lib.REP, -1)
    device.context_factory = lambda: ctx
    client = ctx.socket(lib.REQ)
    port = client.bind_to_random_port("tcp://127.0.0.1")
    device.connect_in(f"tcp://127.0.0.1:{port}")
    device.start()
    client.send(b"echo me")
    assert client.recv() == b"echo me"
    client.close()
    end(device, ctx)


@LIBS
def test_random_ports_reserved_by_a_device_are_each_its_own(lib: Any) -> None:
    """Reservations never repeat a port: eleven in a range of ten cannot all succeed (the
    engine handed out the same port twice, and its device then failed to bind it)."""
    device = devices(lib).ThreadDevice(lib.PULL, lib.PUSH, -1)
    ports: list[int] = []
    with pytest.raises(lib.ZMQBindError):
        for _ in range(11):
            ports.append(
                device.bind_in_to_random_port("tcp://127.0.0.1", min_port=42000, max_port=42010)
            )
    assert len(set(ports)) == len(ports)
