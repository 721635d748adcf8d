"""Fuzzing every security handshake state and the CURVE MESSAGE command.

For each state a codec can be in while it waits for the peer (CURVE server before HELLO and
before INITIATE, client before WELCOME and before READY; PLAIN's four; traffic under CURVE), the
fuzzer feeds: arbitrary command bodies, real commands of that state with bytes flipped, cut or
added, and raw bytes. The only exception the codec may raise is ProtocolError (which closes
that one connection); ZAP requests it emits are answered, so the fuzz reaches past them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.security.commands import ProtocolError, encode_command
from engine.security.curve import CurveServer
from engine.security.plain import PlainClient, PlainServer
from engine.zmtp import ZMTPConnection
from tests.engine.securitykit import Keys, allow_all, answer_zap, curve_client

pytestmark = pytest.mark.timeout(300)

SERVER = Keys.new()
CLIENT = Keys.new()
AUTH = allow_all()
EXAMPLES = 250
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def curve_codecs() -> tuple[ZMTPConnection, ZMTPConnection]:
    return (
        ZMTPConnection(engine.DEALER, mechanism=curve_client(SERVER, CLIENT)),
        ZMTPConnection(engine.ROUTER, mechanism=CurveServer(SERVER.secret)),
    )


def plain_codecs() -> tuple[ZMTPConnection, ZMTPConnection]:
    return (
        ZMTPConnection(engine.DEALER, mechanism=PlainClient(b"user", b"pass")),
        ZMTPConnection(engine.ROUTER, mechanism=PlainServer()),
    )


def deliver(dst: ZMTPConnection, data: bytes) -> None:
    dst.receive_data(data)
    answer_zap(dst, AUTH)


def advance(make: Callable[[], tuple[ZMTPConnection, ZMTPConnection]], steps: int):
    """Run a real handshake for `steps` deliveries (alternating client->server, server->client).

    Returns (client, server, the side due to receive next, what it would have received).
    """
    client, server = make()
    pairs = [(client, server), (server, client)]
    for i in range(steps):
        src, dst = pairs[i % 2]
        deliver(dst, src.data_to_send())
    src, dst = pairs[steps % 2]
    return client, server, dst, src.data_to_send()


#: (name, codec factory, deliveries made before the state under test).
#: Delivery 0 carries the client's greeting (and, for CURVE/PLAIN clients, nothing else yet).
STATES = [
    ("curve-server-waits-hello", curve_codecs, 2),
    ("curve-client-waits-welcome", curve_codecs, 3),
    ("curve-server-waits-initiate", curve_codecs, 4),
    ("curve-client-waits-ready", curve_codecs, 5),
    ("plain-server-waits-hello", plain_codecs, 2),
    ("plain-client-waits-welcome", plain_codecs, 3),
    ("plain-server-waits-initiate", plain_codecs, 4),
    ("plain-client-waits-ready", plain_codecs, 5),
]
STATE_IDS = [s[0] for s in STATES]


def only_protocol_errors(conn: ZMTPConnection, data: bytes) -> None:
    try:
        deliver(conn, data)
        conn.receive_data(b"")
    except ProtocolError:
        pass


names = st.sampled_from([b"HELLO", b"WELCOME", b"INITIATE", b"READY", b"ERROR", b"MESSAGE", b"X"])


@pytest.mark.parametrize(("label", "make", "steps"), STATES, ids=STATE_IDS)
@FUZZ
@given(name=names, body=st.binary(max_size=600))
def test_arbitrary_commands(label: str, make, steps: int, name: bytes, body: bytes) -> None:
    _, _, target, _ = advance(make, steps)
    only_protocol_errors(target, encode_command(name, body))


@pytest.mark.parametrize(("label", "make", "steps"), STATES, ids=STATE_IDS)
@FUZZ
@given(data=st.data())
def test_mutated_real_commands(label: str, make, steps: int, data: st.DataObject) -> None:
    _, _, target, real = advance(make, steps)
    assert real, f"{label}: the real handshake had nothing to send here"
    mutated = bytearray(real)
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(mutated) - 1))
        mutated[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    tail = data.draw(st.binary(max_size=40))
    only_protocol_errors(target, bytes(mutated[:cut]) + tail)


@pytest.mark.parametrize(("label", "make", "steps"), STATES, ids=STATE_IDS)
@FUZZ
@given(raw=st.binary(max_size=400))
def test_raw_bytes(label: str, make, steps: int, raw: bytes) -> None:
    _, _, target, _ = advance(make, steps)
    only_protocol_errors(target, raw)


def curve_traffic() -> tuple[ZMTPConnection, ZMTPConnection]:
    client, server, _, last = advance(curve_codecs, 5)
    deliver(client, last)
    return client, server


frames_st = st.lists(st.binary(max_size=300), min_size=1, max_size=4)


@FUZZ
@given(messages=st.lists(frames_st, min_size=1, max_size=3), data=st.data())
def test_mutated_curve_messages(messages: list[list[bytes]], data: st.DataObject) -> None:
    """Flipped, cut, extended or reordered MESSAGEs: ProtocolError, or the original messages."""
    client, server = curve_traffic()
    client.send_messages(messages)
    wire = bytearray(client.data_to_send())
    mutations = data.draw(st.integers(0, 4))
    for _ in range(mutations):
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    try:
        got = server.receive_data(bytes(wire[:cut]))
    except ProtocolError:
        return
    # Whatever decoded is authentic: a prefix of what was sent, frame for frame.
    assert got == messages[: len(got)]


@FUZZ
@given(body=st.binary(max_size=300), flags=st.sampled_from([0x00, 0x02, 0x04, 0x06, 0x01]))
def test_forged_curve_messages(body: bytes, flags: int) -> None:
    """Frames that were never sealed with the session key never decode to a message."""
    _, server = curve_traffic()
    frame = bytes((flags | (0x02 if len(body) > 255 else 0),))
    frame += len(body).to_bytes(8, "big") if len(body) > 255 else bytes((len(body),))
    try:
        assert server.receive_data(frame + body) == []
    except ProtocolError:
        pass


@FUZZ
@given(body=st.binary(min_size=17, max_size=200), nonce=st.integers(0, 2**64 - 1))
def test_forged_message_commands(body: bytes, nonce: int) -> None:
    """[7]MESSAGE with any nonce and box: refused unless it is genuinely sealed (never is)."""
    _, server = curve_traffic()
    payload = b"\x07MESSAGE" + nonce.to_bytes(8, "big") + body
    with pytest.raises(ProtocolError):
        server.receive_data(bytes((0, len(payload))) + payload)
