"""What a tcp socket carries from the ZeroMQ socket's options, read off the kernel's own
sockets and compared with libzmq (pyzmq): TCP_MAXRT (TCP_USER_TIMEOUT), BINDTODEVICE
(SO_BINDTODEVICE) and TOS (IP_TOS), on the listening, accepted and connected sockets.

The engine had no TCP_MAXRT, BINDTODEVICE or LOOPBACK_FASTPATH (an AttributeError, and
EINVAL by number), and took TOS without ever marking a packet with it. Each socket's descriptor
comes from the monitor's LISTENING, ACCEPTED and CONNECTED events, which carry it in both.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

import pytest
from enginekit import same_option_verdicts_as_libzmq

import engine
import engine.asyncio as engine_asyncio
from engine.utils.monitor import recv_monitor_message
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

#: Linux's number, where this Python's socket module does not name it.
TCP_USER_TIMEOUT = getattr(socket, "TCP_USER_TIMEOUT", 18)
#: Binding a socket to a device takes CAP_NET_RAW; as root here, and in CI.
ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="SO_BINDTODEVICE needs root (CAP_NET_RAW)")


def test_the_options_take_what_libzmq_takes() -> None:
    same_option_verdicts_as_libzmq("TCP_MAXRT", ("DEALER", "ROUTER"), (0, 5000, -1, 2**31 - 1))
    same_option_verdicts_as_libzmq("LOOPBACK_FASTPATH", ("DEALER",), (1, 0, 2, -1))
    names = (b"lo", b"", b"x" * 15, b"x" * 16, b"x" * 17)
    same_option_verdicts_as_libzmq("BINDTODEVICE", ("DEALER", "ROUTER"), names)


@LIBS
def test_loopback_fastpath_is_a_flag(lib: Any) -> None:
    """Windows' option, taken on Linux as libzmq takes it: any value but 0 reads back as 1."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.DEALER)
        assert sock.getsockopt(lib.LOOPBACK_FASTPATH) == 0
        sock.setsockopt(lib.LOOPBACK_FASTPATH, 7)
        assert sock.getsockopt(lib.LOOPBACK_FASTPATH) == 1
        with pytest.raises(TypeError):
            sock.setsockopt(lib.BINDTODEVICE, "lo")  # bytes, as every bytes option
    finally:
        ctx.destroy(linger=0)


def _placement(fd: int) -> tuple[int, bytes, int]:
    """(TCP_USER_TIMEOUT, SO_BINDTODEVICE, IP_TOS) of a descriptor another owner holds."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        device = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0")
        return (
            sock.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
            device,
            sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS),
        )
    finally:
        sock.close()


def _descriptors(lib: Any, monitor: Any, events: set[int]) -> dict[int, int]:
    """The descriptor each of ``events`` carried, from a monitor socket."""
    if lib is engine:
        read = recv_monitor_message
    else:
        from zmq.utils.monitor import recv_monitor_message as read
    monitor.rcvtimeo = 10_000
    seen: dict[int, int] = {}
    while events - set(seen):
        event = read(monitor)
        seen[int(event["event"])] = event["value"]
    return seen


@ROOT
@LIBS
def test_listening_accepted_and_connected_sockets_carry_them(lib: Any) -> None:
    ctx = lib.Context()
    try:
        server, client = ctx.socket(lib.ROUTER), ctx.socket(lib.DEALER)
        server.setsockopt(lib.TCP_MAXRT, 7000)
        server.setsockopt(lib.BINDTODEVICE, b"lo")
        server.setsockopt(lib.TOS, 0x28)
        client.setsockopt(lib.TCP_MAXRT, 3000)
        client.setsockopt(lib.BINDTODEVICE, b"lo")
        client.setsockopt(lib.TOS, 0x10)
        server_events = server.get_monitor_socket()
        client_events = client.get_monitor_socket()
        server.bind("tcp://127.0.0.1:0")
        client.connect(server.getsockopt(lib.LAST_ENDPOINT).decode())
        listening, accepted = int(lib.EVENT_LISTENING), int(lib.EVENT_ACCEPTED)
        fds = _descriptors(lib, server_events, {listening, accepted})
        # TCP_MAXRT goes on connections only: a listening socket sends no data.
        assert _placement(fds[listening]) == (0, b"lo", 0x28)
        assert _placement(fds[accepted]) == (7000, b"lo", 0x28)
        connected = int(lib.EVENT_CONNECTED)
        fds = _descriptors(lib, client_events, {connected})
        assert _placement(fds[connected]) == (3000, b"lo", 0x10)
        client.send(b"over lo")
        server.rcvtimeo = 10_000
        assert server.recv_multipart()[1] == b"over lo"
    finally:
        ctx.destroy(linger=0)


@ROOT
@LIBS
def test_binding_to_a_device_that_does_not_exist_is_enodev(lib: Any) -> None:
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.ROUTER)
        sock.setsockopt(lib.BINDTODEVICE, b"nosuchdev0")
        with pytest.raises(lib.ZMQError) as exc:
            sock.bind("tcp://127.0.0.1:0")
        assert exc.value.errno == errno.ENODEV
    finally:
        ctx.destroy(linger=0)


@ROOT
def test_the_asyncio_face_places_its_connection_before_it_connects() -> None:
    """asyncio's own connect makes its socket too late to bind it to a device; the face makes
    and places the socket itself when an option asks for it."""
    import asyncio

    async def run() -> tuple[int, bytes, int]:
        ctx = engine_asyncio.Context()
        try:
            server, client = ctx.socket(engine.ROUTER), ctx.socket(engine.DEALER)
            client.setsockopt(engine.TCP_MAXRT, 2500)
            client.setsockopt(engine.BINDTODEVICE, b"lo")
            client.setsockopt(engine.TOS, 0x20)
            events = client.get_monitor_socket()
            server.bind("tcp://127.0.0.1:0")
            client.connect(server.getsockopt(engine.LAST_ENDPOINT).decode())
            while True:
                event = await asyncio.wait_for(events.recv_multipart(), 10)
                if int.from_bytes(event[0][:2], "little") == engine.EVENT_CONNECTED:
                    fd = int.from_bytes(event[0][2:6], "little")
                    break
            placed = _placement(fd)
            await client.send(b"placed")
            assert (await asyncio.wait_for(server.recv_multipart(), 10))[1] == b"placed"
            return placed
        finally:
            ctx.destroy(linger=0)

    assert asyncio.run(run()) == (2500, b"lo", 0x20)
