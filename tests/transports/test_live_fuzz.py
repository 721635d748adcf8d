"""Live engine sockets fed hostile datagrams: a udp DISH and an epgm SUB must drop what is not
well-formed, never raise into their I/O loop, and keep delivering what is.

Each example sends random datagrams (and, for PGM, well-formed packets with hostile numbers
from other sources) straight to the socket's port, then one good message, which must arrive.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine as zmq
from engine import udp_datagram as udp
from engine.pgm import packets as wire
from engine.pgm.sender import PgmSender, SenderConfig
from loadtest.ports import unused_port

pytestmark = pytest.mark.timeout(180)

FUZZ_EXAMPLES = 150
WAIT_MS = 10_000
GROUP = "239.192.9.9"
#: The good source's GSI; the hostile packets never use it (they would be its own packets).
GOOD_GSI = b"GOODGS"


@pytest.fixture(scope="module")
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture(scope="module")
def dish(ctx: zmq.Context) -> tuple[zmq.Socket, int]:
    sock = ctx.socket(zmq.DISH)
    sock.rcvtimeo = WAIT_MS
    sock.join("g")
    return sock, int(sock.bind("udp://127.0.0.1:0").rsplit(":", 1)[1])


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.binary(max_size=udp.DATAGRAM_MAX + 100), max_size=8), st.binary(max_size=64))
def test_udp_dish_survives_any_datagram(
    dish: tuple[zmq.Socket, int], junk: list[bytes], body: bytes
) -> None:
    sock, port = dish
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        for datagram in junk:
            if not datagram.startswith(b"\x01g"):  # that would be a real message for "g"
                raw.sendto(datagram, ("127.0.0.1", port))
        raw.sendto(udp.encode_radio(b"g", b"good" + body), ("127.0.0.1", port))
    assert sock.recv() == b"good" + body


def checksummed(raw: bytes) -> bytes:
    if len(raw) < wire.HEADER_SIZE:
        return raw
    packet = bytearray(raw)
    packet[6:8] = b"\0\0"
    struct.pack_into("!H", packet, 6, wire.checksum(packet))
    return bytes(packet)


u32 = st.integers(0, 0xFFFFFFFF)
other_gsi = st.binary(min_size=6, max_size=6).filter(lambda g: g != GOOD_GSI)
hostile = st.one_of(
    st.binary(max_size=1500),
    st.binary(max_size=200).map(checksummed),
    st.builds(
        lambda g, s, t, b: wire.build_data(g, 7000, 0, s, t, b),
        other_gsi,
        u32,
        u32,
        st.binary(max_size=50),
    ),
    st.builds(
        lambda g, s, t, lead: wire.build_spm(g, 7000, 0, s, t, lead, "127.0.0.1"),
        other_gsi,
        u32,
        u32,
        u32,
    ),
    st.builds(
        lambda g, sq: wire.build_nak(wire.NCF, g, 7000, 0, sq, "127.0.0.1", GROUP),
        other_gsi,
        st.lists(u32, min_size=1, max_size=63),
    ),
)


@pytest.fixture(scope="module")
def epgm_sub(ctx: zmq.Context) -> Iterator[tuple[zmq.Socket, int, PgmSender]]:
    port = unused_port(socket.SOCK_DGRAM)
    sock = ctx.socket(zmq.SUB)
    sock.rcvtimeo = WAIT_MS
    sock.subscribe(b"")
    sock.connect(f"epgm://127.0.0.1;{GROUP}:{port}")
    source = PgmSender(
        SenderConfig(
            gsi=GOOD_GSI,
            source_port=7000,
            data_port=port,
            nla="127.0.0.1",
            group=GROUP,
            max_tpdu=1500,
            ip_overhead=28,
            rate=1e9,
            window_sqns=1000,
        ),
        time.monotonic(),
    )
    yield sock, port, source


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(hostile, max_size=8), st.binary(max_size=64))
def test_epgm_sub_survives_any_packet(
    epgm_sub: tuple[zmq.Socket, int, PgmSender], packets: list[bytes], body: bytes
) -> None:
    sock, port, source = epgm_sub
    for i, packet in enumerate(packets):
        # Data port 0 above; some examples get the real one, so they reach a receive window.
        if i % 2 and len(packet) >= 4:
            packet = checksummed(packet[:2] + struct.pack("!H", port) + packet[4:])
        packets[i] = packet
    message = [b"good", body, os.urandom(4)]
    source.send(message)
    source.handle_timer(time.monotonic())  # the rate's tokens refill with time
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        for packet in packets:
            raw.sendto(packet, ("127.0.0.1", port))
        for packet in source.datagrams():
            raw.sendto(packet, ("127.0.0.1", port))
    assert sock.recv_multipart() == message
