"""The udp:// datagram codec: RADIO's layout, DGRAM's addresses, and what it drops (never raises)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import udp_datagram as udp

FUZZ_EXAMPLES = 1000


def test_radio_layout_is_length_group_body() -> None:
    assert udp.encode_radio(b"weather", b"sunny") == b"\x07weathersunny"
    assert udp.encode_radio(b"", b"x") == b"\x00x"
    assert udp.encode_radio(b"g", b"") == b"\x01g"


def test_decode_splits_group_and_body() -> None:
    codec = udp.DatagramCodec()
    assert codec.decode(b"\x07weathersunny") == (b"weather", b"sunny")
    assert codec.decode(b"\x00") == (b"", b"")
    assert codec.decode(b"\x03abc") == (b"abc", b"")
    assert (codec.received, codec.dropped) == (3, 0)


def test_group_limit_is_255_bytes() -> None:
    assert udp.encode_radio(b"g" * 255, b"x")[0] == 255
    with pytest.raises(udp.InvalidGroup):
        udp.encode_radio(b"g" * 256, b"x")
    with pytest.raises(udp.InvalidGroup):
        udp.check_group(b"g" * 256)


def test_datagram_limit_is_libzmqs_buffer() -> None:
    body = b"x" * (udp.DATAGRAM_MAX - 1 - 5)
    assert len(udp.encode_radio(b"group", body)) == udp.DATAGRAM_MAX
    with pytest.raises(udp.DatagramTooLarge):
        udp.encode_radio(b"group", body + b"x")
    assert len(udp.encode_raw(b"y" * udp.DATAGRAM_MAX)) == udp.DATAGRAM_MAX
    with pytest.raises(udp.DatagramTooLarge):
        udp.encode_raw(b"y" * (udp.DATAGRAM_MAX + 1))


def test_bad_datagrams_are_dropped_and_counted() -> None:
    codec = udp.DatagramCodec()
    assert codec.decode(b"") is None  # empty
    assert codec.decode(b"\x05abc") is None  # announces a 5-byte group, has 3
    assert codec.decode(b"\x00" + b"z" * udp.DATAGRAM_MAX) is None  # longer than libzmq sends
    assert codec.decode_raw(b"z" * (udp.DATAGRAM_MAX + 1)) is None
    assert (codec.malformed, codec.oversize, codec.received) == (2, 2, 4)
    assert codec.decode_raw(b"") == b""  # DGRAM carries any bytes, even none


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b"192.0.2.1:5555\0", ("192.0.2.1", 5555)),  # as libzmq writes it: a C string
        (b"192.0.2.1:5555", ("192.0.2.1", 5555)),  # and without the NUL, as libzmq reads it
        (b"127.0.0.1:1", ("127.0.0.1", 1)),
        (b"10.0.0.1:65535", ("10.0.0.1", 65535)),
        (b"10.0.0.1:0", None),
        (b"10.0.0.1:65536", None),
        (b"10.0.0.1", None),
        (b"host.example:80", None),
        (b"[::1]:80", None),
        (b"10.0.0.1:+80", None),
        (b"10.0.0.1: 80", None),
        (b"10.0.0.1:80\0\0", None),
        (b"\xff\xfe:80", None),
    ],
)
def test_dgram_peer_addresses(frame: bytes, expected: tuple[str, int] | None) -> None:
    assert udp.parse_peer(frame) == expected
    if expected:
        assert udp.format_peer(*expected) == frame.rstrip(b"\0") + b"\0"


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.binary(max_size=udp.DATAGRAM_MAX + 64))
def test_fuzz_decode_never_raises(datagram: bytes) -> None:
    codec = udp.DatagramCodec()
    result = codec.decode(datagram)
    if result is None:
        assert codec.dropped == 1
    else:
        group, body = result
        assert len(group) <= udp.GROUP_MAX
        assert udp.encode_radio(group, body) == datagram  # nothing lost or invented
    assert codec.decode_raw(datagram) in (None, datagram)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.binary(max_size=udp.GROUP_MAX), st.binary(max_size=2000))
def test_fuzz_round_trip(group: bytes, body: bytes) -> None:
    assert udp.DatagramCodec().decode(udp.encode_radio(group, body)) == (group, body)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.binary(max_size=40))
def test_fuzz_parse_peer_never_raises(frame: bytes) -> None:
    parsed = udp.parse_peer(frame)
    if parsed is not None:
        host, port = parsed
        assert 0 < port < 65536
        assert udp.parse_peer(udp.format_peer(host, port)) == parsed
