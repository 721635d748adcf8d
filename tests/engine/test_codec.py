"""The sans-I/O ZMTP codec on its own: two ZMTPConnections wired back to back, no sockets."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.frame_runs import equal_frames, split_run
from engine.zmtp import (
    HandshakeComplete,
    PeerError,
    PingReceived,
    PongReceived,
    ProtocolError,
    State,
    ZMTPConnection,
    encode_command,
    encode_frames,
    encode_properties,
    greeting,
)

pytestmark = pytest.mark.timeout(120)

ALL_TYPES = [
    engine.PAIR,
    engine.PUB,
    engine.SUB,
    engine.REQ,
    engine.REP,
    engine.DEALER,
    engine.ROUTER,
    engine.PULL,
    engine.PUSH,
    engine.XPUB,
    engine.XSUB,
]

# RFC 37's table, written out independently of engine.constants.
RFC37_PEERS: dict[int, set[int]] = {
    engine.REQ: {engine.REP, engine.ROUTER},
    engine.REP: {engine.REQ, engine.DEALER},
    engine.DEALER: {engine.REP, engine.DEALER, engine.ROUTER},
    engine.ROUTER: {engine.REQ, engine.DEALER, engine.ROUTER},
    engine.PUB: {engine.SUB, engine.XSUB},
    engine.XPUB: {engine.SUB, engine.XSUB},
    engine.SUB: {engine.PUB, engine.XPUB},
    engine.XSUB: {engine.PUB, engine.XPUB},
    engine.PUSH: {engine.PULL},
    engine.PULL: {engine.PUSH},
    engine.PAIR: {engine.PAIR},
}

Chunker = Callable[[bytes], Iterable[bytes]]


def whole(data: bytes) -> Iterable[bytes]:
    yield data


def byte_by_byte(data: bytes) -> Iterable[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def chunked(sizes: list[int]) -> Chunker:
    """Split data into pieces of the given sizes, cycling through them."""

    def split(data: bytes) -> Iterable[bytes]:
        pos, i = 0, 0
        while pos < len(data):
            step = sizes[i % len(sizes)] if sizes else len(data)
            yield data[pos : pos + step]
            pos += step
            i += 1

    return split


def feed(
    conn: ZMTPConnection,
    data: bytes,
    chunker: Chunker = whole,
    on_ready: Callable[[ZMTPConnection], None] | None = None,
) -> list[list[bytes]]:
    """Feed bytes in pieces; `on_ready` runs once the handshake has completed."""
    out: list[list[bytes]] = []
    for piece in chunker(data):
        before = conn.state
        out += conn.receive_data(piece)
        if before is not State.TRAFFIC and conn.state is State.TRAFFIC and on_ready is not None:
            on_ready(conn)
    return out


def pump(
    a: ZMTPConnection,
    b: ZMTPConnection,
    chunker: Chunker = whole,
    on_ready: Callable[[ZMTPConnection], None] | None = None,
) -> tuple[list[list[bytes]], list[list[bytes]]]:
    """Move bytes both ways until neither side has anything to send; returns what each got."""
    got_a: list[list[bytes]] = []
    got_b: list[list[bytes]] = []
    for _ in range(1000):
        to_b, to_a = a.data_to_send(), b.data_to_send()
        if not to_b and not to_a:
            return got_a, got_b
        got_b += feed(b, to_b, chunker, on_ready)
        got_a += feed(a, to_a, chunker, on_ready)
    raise AssertionError("codecs never went quiet")


def pair(
    type_a: int, type_b: int, chunker: Chunker = whole, **kw_b: object
) -> tuple[ZMTPConnection, ZMTPConnection]:
    """Two connected codecs past the handshake."""
    a = ZMTPConnection(type_a)
    b = ZMTPConnection(type_b, **kw_b)  # type: ignore[arg-type]
    pump(a, b, chunker)
    assert a.state is State.TRAFFIC and b.state is State.TRAFFIC
    return a, b


def transfer(
    a: ZMTPConnection, b: ZMTPConnection, msgs: list[list[bytes]], chunker: Chunker = whole
):
    a.send_messages(msgs)
    return feed(b, a.data_to_send(), chunker)


def events_of(conn: ZMTPConnection, kind: type) -> list:
    return [e for e in conn.pop_events() if isinstance(e, kind)]


# -- handshake --------------------------------------------------------------------------------


def test_handshake_reports_peer() -> None:
    """Both sides learn the peer's type, identity and version from READY."""
    a = ZMTPConnection(engine.DEALER, identity=b"dealer-1")
    b = ZMTPConnection(engine.ROUTER)
    pump(a, b)
    [ev] = events_of(b, HandshakeComplete)
    assert ev.socket_type == engine.DEALER
    assert ev.identity == b"dealer-1"
    assert ev.minor_version == 1
    assert ev.properties["socket-type"] == b"DEALER"
    assert b.peer_identity == b"dealer-1"
    [ev_a] = events_of(a, HandshakeComplete)
    assert ev_a.socket_type == engine.ROUTER


def test_greeting_layout() -> None:
    """64 bytes: signature, version 3.1, NULL mechanism, as-server 0, filler."""
    g = ZMTPConnection(engine.PUSH).data_to_send()
    assert len(g) == 64
    assert g[:10] == b"\xff" + b"\x00" * 8 + b"\x7f"
    assert g[10:12] == b"\x03\x01"
    assert g[12:32] == b"NULL" + b"\x00" * 16
    assert g[32:] == b"\x00" * 32


@pytest.mark.parametrize(
    "chunker", [whole, byte_by_byte, chunked([3, 7, 1])], ids=["whole", "byte_by_byte", "chunked"]
)
def test_handshake_any_split(chunker: Chunker) -> None:
    a, b = pair(engine.PUSH, engine.PULL, chunker)
    assert transfer(a, b, [[b"hello"]], chunker) == [[b"hello"]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 80), min_size=1, max_size=12))
def test_handshake_random_chunking(sizes: list[int]) -> None:
    a, b = pair(engine.REQ, engine.REP, chunked(sizes))
    assert transfer(a, b, [[b"", b"req"]], chunked(sizes)) == [[b"", b"req"]]


def test_handshake_with_zmtp30_peer() -> None:
    """A 3.0 peer completes the handshake; we note its minor version."""
    a = ZMTPConnection(engine.PUSH, minor_version=0)
    b = ZMTPConnection(engine.PULL)
    pump(a, b)
    assert b.peer_minor_version == 0
    assert a.peer_minor_version == 1
    assert transfer(a, b, [[b"x"]]) == [[b"x"]]


def test_older_major_version_rejected() -> None:
    b = ZMTPConnection(engine.PULL)
    old = bytearray(greeting())
    old[10] = 2
    with pytest.raises(ProtocolError):
        b.receive_data(bytes(old))


def test_unknown_mechanism_rejected_with_error() -> None:
    b = ZMTPConnection(engine.PULL)
    b.data_to_send()
    bad = bytearray(greeting())
    bad[12:32] = b"CURVE".ljust(20, b"\x00")
    with pytest.raises(ProtocolError):
        b.receive_data(bytes(bad))
    assert b"\x05ERROR" in b.data_to_send()


def test_non_zmtp_peer_rejected_early() -> None:
    """An HTTP client's short request is not a ZMTP signature: reject it without waiting."""
    b = ZMTPConnection(engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(b"GET / HTTP/1.0\r\n\r\n")


def test_ready_expected_during_handshake() -> None:
    b = ZMTPConnection(engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(greeting() + encode_command(b"PING", b"\x00\x00"))
    assert b"\x05ERROR" in b.data_to_send()


def test_error_during_handshake_is_peer_error() -> None:
    b = ZMTPConnection(engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(greeting() + encode_command(b"ERROR", b"\x04nope"))
    assert events_of(b, PeerError) == [PeerError("nope")]


# -- framing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, b"\x00\x00"),
        (1, b"\x00\x01"),
        (255, b"\x00\xff"),
        (256, b"\x02" + struct.pack(">Q", 256)),
        (70000, b"\x02" + struct.pack(">Q", 70000)),
    ],
)
def test_frame_header_short_and_long(size: int, header: bytes) -> None:
    """Up to 255 bytes: 1-byte size; from 256: LONG flag and an 8-byte big-endian size."""
    a, _ = pair(engine.PUSH, engine.PULL)
    a.send_messages([[b"z" * size]])
    assert a.data_to_send() == header + b"z" * size


def test_more_flag_on_all_but_last_frame() -> None:
    a, _ = pair(engine.PUSH, engine.PULL)
    a.send_messages([[b"a", b"b" * 300, b"c"]])
    wire = a.data_to_send()
    assert wire == (b"\x01\x01a" + b"\x03" + struct.pack(">Q", 300) + b"b" * 300 + b"\x00\x01c")


@pytest.mark.parametrize("size", [0, 1, 254, 255, 256, 257, 65535, 65536, 1 << 20])
def test_round_trip_sizes(size: int) -> None:
    a, b = pair(engine.PUSH, engine.PULL)
    frame = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert transfer(a, b, [[frame], [frame, frame]]) == [[frame], [frame, frame]]


def test_long_form_for_a_short_frame_is_accepted() -> None:
    """A peer may use the 8-byte size form for a small frame; it still decodes."""
    _, b = pair(engine.PUSH, engine.PULL)
    assert b.receive_data(b"\x02" + struct.pack(">Q", 3) + b"abc") == [[b"abc"]]


frames_st = st.lists(st.binary(max_size=700), min_size=1, max_size=6)
messages_st = st.lists(frames_st, min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=messages_st, sizes=st.lists(st.integers(1, 400), max_size=20))
def test_multipart_round_trip_any_chunking(msgs: list[list[bytes]], sizes: list[int]) -> None:
    """Any list of multipart messages survives any way of splitting the byte stream."""
    a, b = pair(engine.DEALER, engine.DEALER)
    assert transfer(a, b, msgs, chunked(sizes)) == msgs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=messages_st)
def test_multipart_round_trip_byte_by_byte(msgs: list[list[bytes]]) -> None:
    a, b = pair(engine.PAIR, engine.PAIR, byte_by_byte)
    assert transfer(a, b, msgs, byte_by_byte) == msgs


# Runs of equal-sized messages (one frame or several, short or long) mixed with others: the
# decoder splits runs of equal short frames by slices; what it returns must not change.
run_st = st.tuples(
    st.lists(st.binary(max_size=300), min_size=1, max_size=3),  # the message repeated
    st.integers(1, 40),  # how many times
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    runs=st.lists(run_st, min_size=1, max_size=6),
    sizes=st.lists(st.integers(1, 700), max_size=8),
    limit=st.integers(1, 50),
    bare=st.booleans(),
)
def test_runs_of_equal_messages_any_chunking_and_limit(
    runs: list[tuple[list[bytes], int]], sizes: list[int], limit: int, bare: bool
) -> None:
    """Equal messages in a row come out as sent, however the stream is split, and a `limit`
    on each call (RCVHWM) stops decoding exactly there, leaving the rest for later calls.
    With bare_frames, each one-frame message comes as its frame (bytes), every other as a
    list."""
    msgs = [list(frames) for frames, times in runs for _ in range(times)]
    a, b = pair(engine.DEALER, engine.DEALER, bare_frames=bare)
    a.send_messages(msgs)
    got: list[list[bytes]] = []
    for piece in chunked(sizes)(a.data_to_send()):
        got_now = b.receive_data(piece, limit)
        assert len(got_now) <= limit
        got += got_now
        while b.input_pending:  # may be a partial frame only: then nothing comes
            more = b.receive_data(b"", limit)
            assert len(more) <= limit
            if not more:
                break
            got += more
    if bare:
        assert got == [m[0] if len(m) == 1 else m for m in msgs]
        kinds = [bytes if len(msg) == 1 else list for msg in msgs]
        assert [type(m) for m in got] == kinds
    else:
        assert got == msgs
        assert all(type(m) is list for m in got)


@pytest.mark.parametrize("size", [0, 1, 16, 200, 255])
def test_split_run_cuts_every_count(size: int) -> None:
    """The struct formats (64 records, then halves) cut any count of equal frames exactly."""
    stride = size + 2
    bodies = [bytes([i % 251]) * size for i in range(300)]
    data = b"!!" + b"".join(bytes((0, size)) + body for body in bodies)
    for count in [*range(0, 140), 191, 192, 255, 256, 257, 300]:
        assert split_run(data, 2, size, count) == bodies[:count]
    assert len(data) == 2 + 300 * stride


def test_bare_frames_subscriptions_and_multipart() -> None:
    """A publisher's codec with bare_frames gives subscriptions (3.1 commands) as bare frames
    too; a multipart message stays a list, a one-frame one after it is bare again."""
    sub, pub = pair(engine.SUB, engine.XPUB, bare_frames=True)
    sub.send_messages([[b"\x01news"], [b"\x00news"], [b"a", b"b"], [b"c"]])
    assert feed(pub, sub.data_to_send()) == [b"\x01news", b"\x00news", [b"a", b"b"], b"c"]


def test_a_run_of_equal_frames_stops_at_a_different_one() -> None:
    a, b = pair(engine.PULL, engine.PUSH)
    same = [[b"abc"]] * 40
    msgs = [*same, [b"abd", b"x"], [b"ab"], *same, [b"abc"] * 2, *same[:9], [b"\x01" * 3]]
    b.send_messages(msgs)
    assert feed(a, b.data_to_send()) == msgs


def long_frame(body: bytes, flags: int = 0x02) -> bytes:
    """A frame with the 8-octet size, whatever its length (RFC 23 allows it for short ones)."""
    return struct.pack(">BQ", flags, len(body)) + body


@pytest.mark.parametrize("chunker", [whole, chunked([1000, 7, 4096])], ids=["whole", "chunked"])
def test_a_run_of_equal_long_frames_stops_where_any_header_octet_differs(
    chunker: Chunker,
) -> None:
    """Runs of equal long frames are found by their whole 9-octet header: a frame whose size
    differs only in its second-lowest octet (1,280 after 1,024), or whose flags add MORE, ends
    the run; long-encoded short frames run too."""
    a, _ = pair(engine.PULL, engine.PUSH)
    k = [bytes([i]) * 1024 for i in range(12)]
    stream = b"".join(long_frame(body) for body in k[:5])
    stream += long_frame(b"w" * 1280)
    stream += b"".join(long_frame(body) for body in k[5:9])
    stream += long_frame(k[9], flags=0x03) + long_frame(b"tail")
    stream += b"".join(long_frame(bytes([i]) * 5) for i in range(4))
    stream += b"".join(long_frame(body) for body in k[10:12])
    expected = [[body] for body in k[:5]] + [[b"w" * 1280]]
    expected += [[body] for body in k[5:9]] + [[k[9], b"tail"]]
    expected += [[bytes([i]) * 5] for i in range(4)] + [[body] for body in k[10:12]]
    assert feed(a, stream, chunker) == expected


def test_equal_frames_compares_every_header_octet() -> None:
    header = struct.pack(">BQ", 0x02, 1024)
    frames = [header + bytes(1024)] * 20
    for octet in range(9):
        changed = bytearray(header)
        changed[octet] ^= 0x10
        data = b"".join(frames[:13]) + bytes(changed) + bytes(1024) + b"".join(frames[:6])
        assert equal_frames(data, 0, header, 1024, 20) == 13
    assert equal_frames(b"".join(frames), 0, header, 1024, 20) == 20


def test_one_batch_of_short_long_and_multipart_messages() -> None:
    """The encoder's one-comprehension batches: short only, short and long mixed, and either
    with a multi-frame message (the general loop) give the same messages back."""
    for msgs in (
        [[b"a"], [b"b" * 255]],
        [[b"a"], [b"x" * 300], [b"b" * 255], [b"c" * 256], [b""]],
        [[b"x" * 300], [b"m", b"n" * 400], [b"a"]],
        [[b"a"], [b"m", b"n"], [b"x" * 300]],
    ):
        a, b = pair(engine.PULL, engine.PUSH)
        b.send_messages(msgs)
        assert feed(a, b.data_to_send()) == msgs


def test_messages_before_handshake_refused() -> None:
    with pytest.raises(RuntimeError):
        ZMTPConnection(engine.PUSH).send_messages([[b"x"]])


def test_messages_right_behind_ready_are_decoded() -> None:
    """Data that arrives in the same read as READY comes back from that same call."""
    a = ZMTPConnection(engine.PUSH)
    b = ZMTPConnection(engine.PULL)
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())  # a is in TRAFFIC now
    a.send_messages([[b"early"]])
    assert b.receive_data(a.data_to_send()) == [[b"early"]]
    assert [type(e) for e in b.pop_events()] == [HandshakeComplete]


# -- ROUTER ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunker", [whole, byte_by_byte], ids=["whole", "byte_by_byte"])
def test_router_codec_adds_no_routing_id(chunker: Chunker) -> None:
    """The codec hands a ROUTER its peer's frames as they are: the ROUTER socket adds the
    routing id when it takes a message, so the codec knows nothing of routing."""
    dealer = ZMTPConnection(engine.DEALER, identity=b"D1")
    router = ZMTPConnection(engine.ROUTER)
    pump(dealer, router, chunker)
    assert router.peer_identity == b"D1"
    dealer.send_messages([[b"one"], [b"", b"two", b"2"]])
    got = feed(router, dealer.data_to_send(), chunker)
    assert got == [[b"one"], [b"", b"two", b"2"]]
    router.send_messages([[b"reply"]])
    assert feed(dealer, router.data_to_send()) == [[b"reply"]]


# -- heartbeats -------------------------------------------------------------------------------


def test_ping_pong_echoes_context_and_ttl() -> None:
    a, b = pair(engine.DEALER, engine.ROUTER)
    a.pop_events()
    b.pop_events()
    assert a.send_ping(ttl_deciseconds=25, context=b"ctx-1")
    wire = a.data_to_send()
    assert wire == encode_command(b"PING", b"\x00\x19ctx-1")
    assert feed(b, wire) == []
    assert events_of(b, PingReceived) == [PingReceived(2.5)]
    pong = b.data_to_send()
    assert pong == encode_command(b"PONG", b"ctx-1")
    assert feed(a, pong) == []
    assert events_of(a, PongReceived) == [PongReceived(b"ctx-1")]


def test_ping_context_capped_at_16_bytes() -> None:
    a, b = pair(engine.PUSH, engine.PULL)
    b.pop_events()
    # Our own sender caps it...
    a.send_ping(0, b"x" * 40)
    assert a.data_to_send() == encode_command(b"PING", b"\x00\x00" + b"x" * 16)
    # ...and a PONG echoes at most 16 bytes of an over-long context from someone else.
    feed(b, encode_command(b"PING", b"\x00\x00" + bytes(range(40))))
    assert b.data_to_send() == encode_command(b"PONG", bytes(range(16)))
    assert events_of(b, PingReceived) == [PingReceived(0.0)]


def test_ping_ttl_clamped_to_16_bits() -> None:
    a, b = pair(engine.PUSH, engine.PULL)
    b.pop_events()
    a.send_ping(10**6)
    feed(b, a.data_to_send())
    assert events_of(b, PingReceived) == [PingReceived(0xFFFF / 10)]


def test_no_ping_to_zmtp30_peer() -> None:
    a = ZMTPConnection(engine.PUSH)
    b = ZMTPConnection(engine.PULL, minor_version=0)
    pump(a, b)
    assert a.send_ping(10, b"c") is False
    assert a.data_to_send() == b""


def test_short_ping_is_a_protocol_error() -> None:
    _, b = pair(engine.PUSH, engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(encode_command(b"PING", b"\x00"))


def test_unknown_command_ignored() -> None:
    a, b = pair(engine.PUSH, engine.PULL)
    a.send_messages([[b"after"]])
    data = encode_command(b"FUTURE", b"whatever") + a.data_to_send()
    assert b.receive_data(data) == [[b"after"]]


def test_error_in_traffic_is_peer_error() -> None:
    a, b = pair(engine.PUSH, engine.PULL)
    b.pop_events()
    a.send_error("going away")
    assert a.state is State.CLOSED
    assert feed(b, a.data_to_send()) == []
    assert events_of(b, PeerError) == [PeerError("going away")]
    assert b.state is State.CLOSED
    assert b.receive_data(b"\x00\x01x") == []  # a closed codec decodes nothing more


def test_ready_after_handshake_rejected() -> None:
    _, b = pair(engine.PUSH, engine.PULL)
    ready = encode_command(b"READY", encode_properties({"Socket-Type": b"PUSH"}))
    with pytest.raises(ProtocolError):
        b.receive_data(ready)


# -- subscriptions ------------------------------------------------------------------------------


@pytest.mark.parametrize("sub_type", [engine.SUB, engine.XSUB])
def test_subscribe_cancel_become_commands_for_zmtp31(sub_type: int) -> None:
    sub, pub = pair(sub_type, engine.PUB)
    sub.send_messages([[b"\x01topic"], [b"\x00topic"]])
    wire = sub.data_to_send()
    assert wire == encode_command(b"SUBSCRIBE", b"topic") + encode_command(b"CANCEL", b"topic")
    assert feed(pub, wire) == [[b"\x01topic"], [b"\x00topic"]]


@pytest.mark.parametrize("sub_type", [engine.SUB, engine.XSUB])
def test_subscribe_cancel_stay_messages_for_zmtp30(sub_type: int) -> None:
    sub = ZMTPConnection(sub_type)
    pub = ZMTPConnection(engine.XPUB, minor_version=0)
    pump(sub, pub)
    sub.send_messages([[b"\x01a"], [b"\x00a"], [b"\x01"]])
    wire = sub.data_to_send()
    assert wire == b"\x00\x02\x01a" + b"\x00\x02\x00a" + b"\x00\x01\x01"
    assert feed(pub, wire) == [[b"\x01a"], [b"\x00a"], [b"\x01"]]


@pytest.mark.parametrize("pub_type", [engine.PUB, engine.XPUB])
def test_publisher_turns_both_forms_into_messages(pub_type: int) -> None:
    """Commands from a 3.1 peer and 0x01/0x00 messages from a 3.0 peer look the same."""
    _, pub = pair(engine.SUB, pub_type)
    wire = (
        encode_command(b"SUBSCRIBE", b"cmd")
        + b"\x00\x04\x01msg"
        + encode_command(b"CANCEL", b"cmd")
        + b"\x00\x04\x00msg"
        + encode_command(b"SUBSCRIBE", b"")
    )
    assert feed(pub, wire) == [[b"\x01cmd"], [b"\x01msg"], [b"\x00cmd"], [b"\x00msg"], [b"\x01"]]


def test_multipart_starting_with_0x01_is_not_a_subscription() -> None:
    sub, pub = pair(engine.XSUB, engine.XPUB)
    sub.send_messages([[b"\x01a", b"more"]])
    assert feed(pub, sub.data_to_send()) == [[b"\x01a", b"more"]]


def test_non_publisher_ignores_subscribe_command() -> None:
    _, b = pair(engine.PUSH, engine.PULL)
    assert b.receive_data(encode_command(b"SUBSCRIBE", b"x")) == []


# -- socket-type compatibility ------------------------------------------------------------------


def _try_handshake(
    a: ZMTPConnection, b: ZMTPConnection
) -> tuple[dict[str, ProtocolError], dict[str, bytes]]:
    """Exchange bytes until quiet; returns which side raised and all bytes each side sent."""
    conns = {"a": a, "b": b}
    peer_of = {"a": "b", "b": "a"}
    failed: dict[str, ProtocolError] = {}
    sent = {"a": b"", "b": b""}
    for _ in range(20):
        moved = False
        for name in ("a", "b"):
            data = conns[name].data_to_send()
            if not data:
                continue
            moved = True
            sent[name] += data
            peer = peer_of[name]
            if peer in failed:
                continue
            try:
                feed(conns[peer], data)
            except ProtocolError as exc:
                failed[peer] = exc
        if not moved:
            break
    return failed, sent


@pytest.mark.parametrize("type_b", ALL_TYPES, ids=lambda t: engine.SocketType(t).name)
@pytest.mark.parametrize("type_a", ALL_TYPES, ids=lambda t: engine.SocketType(t).name)
def test_socket_type_compatibility(type_a: int, type_b: int) -> None:
    """RFC 37's table: compatible pairs complete; others fail with an ERROR for the peer."""
    a, b = ZMTPConnection(type_a), ZMTPConnection(type_b)
    failed, sent = _try_handshake(a, b)
    if type_b in RFC37_PEERS[type_a]:
        assert failed == {}
        assert a.state is State.TRAFFIC and b.state is State.TRAFFIC
        assert a.peer_socket_type == type_b and b.peer_socket_type == type_a
        return
    assert failed, "an incompatible pair completed its handshake"
    for name in failed:
        conn = {"a": a, "b": b}[name]
        assert conn.state is State.CLOSED
        assert encode_command(b"ERROR", b"\x13Invalid socket type") in sent[name]


def test_incompatible_peer_gets_error_command() -> None:
    """The rejecting side queues ERROR; the other side then sees PeerError."""
    push = ZMTPConnection(engine.PUSH)
    sub = ZMTPConnection(engine.SUB)
    sub.receive_data(push.data_to_send())  # sub: greeting in, READY queued
    with pytest.raises(ProtocolError):
        push.receive_data(sub.data_to_send())  # push: greeting + READY(SUB)
    out = push.data_to_send()
    assert b"\x05ERROR" in out
    with pytest.raises(ProtocolError):
        feed(sub, out)  # push's READY (incompatible) comes first
    assert push.state is State.CLOSED


# -- rejected input -----------------------------------------------------------------------------


def test_identity_starting_with_zero_rejected() -> None:
    dealer = ZMTPConnection(engine.DEALER, identity=b"\x00abc")
    router = ZMTPConnection(engine.ROUTER)
    router.receive_data(dealer.data_to_send())
    dealer.receive_data(router.data_to_send())
    with pytest.raises(ProtocolError):
        router.receive_data(dealer.data_to_send())
    assert b"\x05ERROR" in router.data_to_send()


def test_identity_longer_than_255_rejected() -> None:
    router = ZMTPConnection(engine.ROUTER)
    ready = encode_command(
        b"READY", encode_properties({"Socket-Type": b"DEALER", "Identity": b"i" * 256})
    )
    with pytest.raises(ProtocolError):
        router.receive_data(greeting() + ready)


def test_malformed_metadata_rejected() -> None:
    b = ZMTPConnection(engine.PULL)
    body = encode_properties({"Socket-Type": b"PUSH"})[:-2]  # value runs past the end
    with pytest.raises(ProtocolError):
        b.receive_data(greeting() + encode_command(b"READY", body))


@pytest.mark.parametrize("flags", [0x08, 0x10, 0x20, 0x40, 0x80, 0x09])
def test_reserved_flag_bits_rejected(flags: int) -> None:
    _, b = pair(engine.PUSH, engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(bytes((flags, 1)) + b"x")


def test_reserved_flag_bits_rejected_in_handshake() -> None:
    b = ZMTPConnection(engine.PULL)
    ready = bytearray(encode_command(b"READY", encode_properties({"Socket-Type": b"PUSH"})))
    ready[0] |= 0x10
    with pytest.raises(ProtocolError):
        b.receive_data(greeting() + bytes(ready))


def test_command_inside_multipart_rejected() -> None:
    _, b = pair(engine.PUSH, engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(b"\x01\x01a" + encode_command(b"PING", b"\x00\x00"))


def test_command_with_more_flag_rejected() -> None:
    _, b = pair(engine.PUSH, engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(b"\x05\x05\x04PING")


# -- sizes ----------------------------------------------------------------------------------------


def test_maxmsgsize_single_frame() -> None:
    a, b = pair(engine.PUSH, engine.PULL, max_message_size=1000)
    assert transfer(a, b, [[b"s" * 100]]) == [[b"s" * 100]]
    with pytest.raises(ProtocolError):
        transfer(a, b, [[b"L" * 5000]])


def test_maxmsgsize_counts_every_frame_of_a_multipart() -> None:
    """Many frames, each far below the limit, still add up to one oversized message."""
    a, b = pair(engine.PUSH, engine.PULL, max_message_size=1000)
    with pytest.raises(ProtocolError):
        transfer(a, b, [[b"f" * 50] * 30], chunked([7]))


def test_maxmsgsize_is_per_message_not_per_stream() -> None:
    """Many small messages in a row are fine: the count restarts with each message."""
    a, b = pair(engine.PUSH, engine.PULL, max_message_size=1000)
    msgs = [[b"m" * 100] for _ in range(100)]
    assert transfer(a, b, msgs) == msgs


def test_many_empty_frames_are_bounded() -> None:
    """A flood of empty MORE frames cannot grow a message forever, even without MAXMSGSIZE."""
    _, b = pair(engine.PUSH, engine.PULL, max_message_size=10_000)
    with pytest.raises(ProtocolError):
        b.receive_data(b"\x01\x00" * 10_000)


@pytest.mark.parametrize(("limit", "size"), [(100, 100), (100, 37), (10, 0)])
def test_maxmsgsize_accepts_message_at_the_limit(limit: int, size: int) -> None:
    """libzmq: a peer is only dropped for a message *larger* than MAXMSGSIZE."""
    a, b = pair(engine.PUSH, engine.PULL, max_message_size=limit)
    assert transfer(a, b, [[b"q" * size]]) == [[b"q" * size]]


@pytest.mark.parametrize("limit", [-1, 1_000_000])
def test_huge_declared_frame_rejected_before_buffering(limit: int) -> None:
    """The 9-byte header alone is enough to refuse a frame too large to accept."""
    _, b = pair(engine.PUSH, engine.PULL, max_message_size=limit)
    with pytest.raises(ProtocolError):
        b.receive_data(b"\x02" + struct.pack(">Q", 1 << 40))


def test_declared_frame_just_over_limit_rejected_from_header() -> None:
    _, b = pair(engine.PUSH, engine.PULL, max_message_size=4096)
    with pytest.raises(ProtocolError):
        b.receive_data(b"\x02" + struct.pack(">Q", 4097))


def test_huge_command_rejected_before_buffering() -> None:
    _, b = pair(engine.PUSH, engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(b"\x06" + struct.pack(">Q", 1 << 40))


def test_huge_command_rejected_during_handshake() -> None:
    b = ZMTPConnection(engine.PULL)
    with pytest.raises(ProtocolError):
        b.receive_data(greeting() + b"\x06" + struct.pack(">Q", 1 << 40))


# REQ/REP messages (an empty delimiter, then a body) have a short path of their own in both
# directions; mixed with other messages, any chunking must give back what the general path does.
envelope_st = st.binary(max_size=300).map(lambda body: [b"", body])
mixed_st = st.lists(st.one_of(envelope_st, envelope_st, frames_st), min_size=1, max_size=10)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=mixed_st, sizes=st.lists(st.integers(1, 40), max_size=12), one_by_one=st.booleans())
def test_envelopes_encode_as_frames_and_survive_any_chunking(
    msgs: list[list[bytes]], sizes: list[int], one_by_one: bool
) -> None:
    a, b = pair(engine.REQ, engine.REP)
    if one_by_one:  # as a REQ socket sends them
        for msg in msgs:
            a.send_messages([msg])
    else:
        a.send_messages(msgs)
    wire = a.data_to_send()
    reference: list[bytes] = []
    for msg in msgs:
        encode_frames(msg, reference)
    assert wire == b"".join(reference)
    assert feed(b, wire, chunked(sizes)) == msgs


@pytest.mark.parametrize("limit", [0, 3, 254, 255, 300])
@pytest.mark.parametrize("size", [0, 4, 255])
def test_envelope_over_the_message_size_limit_is_refused(limit: int, size: int) -> None:
    _, b = pair(engine.REQ, engine.REP, max_message_size=limit)
    body = b"x" * size
    wire = bytes((1, 0, 0, size)) + body
    if size > limit:
        with pytest.raises(ProtocolError):
            b.receive_data(wire)
    else:
        assert b.receive_data(wire) == [[b"", body]]
