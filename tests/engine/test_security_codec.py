"""The security mechanisms in the sans-I/O codec: handshakes, ZAP, sealing, and every refusal."""

from __future__ import annotations

import pytest

import engine
from engine.auth import Authenticator
from engine.security.commands import (
    AuthenticationFailed,
    HandshakeFailed,
    ProtocolError,
    encode_command,
)
from engine.security.curve import COOKIE_LIFETIME_S, CurveServer
from engine.security.curve_message import CurveCipher
from engine.security.mechanism import ZapSettings
from engine.security.null import NullMechanism
from engine.security.plain import PlainClient, PlainServer
from engine.security.zap import ZapReply
from engine.zmtp import HandshakeComplete, PeerError, State, ZapRequested, ZMTPConnection
from tests.engine.securitykit import Keys, allow_all, curve_client, curve_server, pump

SERVER = Keys.new()
CLIENT = Keys.new()


def curve_pair(
    client_type: int = engine.DEALER,
    server_type: int = engine.ROUTER,
    max_message_size: int = -1,
    **server_kwargs,
) -> tuple[ZMTPConnection, ZMTPConnection]:
    a = ZMTPConnection(client_type, mechanism=curve_client(SERVER, CLIENT))
    b = ZMTPConnection(
        server_type,
        mechanism=CurveServer(SERVER.secret, **server_kwargs),
        max_message_size=max_message_size,
    )
    return a, b


def connected_curve(**kwargs) -> tuple[ZMTPConnection, ZMTPConnection]:
    a, b = curve_pair(**kwargs)
    pump(a, b, allow_all())
    assert a.state is State.TRAFFIC and b.state is State.TRAFFIC
    return a, b


def expect_failure(conn: ZMTPConnection, data: bytes, event: int, value: int) -> None:
    with pytest.raises(ProtocolError) as failure:
        conn.receive_data(data)
    assert (failure.value.event, failure.value.value) == (event, value)


PROTOCOL = engine.EVENT_HANDSHAKE_FAILED_PROTOCOL

# -- CURVE ------------------------------------------------------------------------------------------


def test_curve_handshake_and_traffic() -> None:
    a, b = curve_pair(engine.DEALER, engine.ROUTER)
    log = pump(a, b, allow_all())
    done = [e for e in log.of(b) if isinstance(e, HandshakeComplete)]
    assert done and done[0].properties["user-id"] == CLIENT.public_z85
    assert done[0].properties["socket-type"] == b"DEALER"
    a.send_messages([[b"one"], [b"two", b"x" * 1000], [b""]])
    wire = a.data_to_send()
    assert b"one" not in wire and b"x" * 64 not in wire  # nothing travels in clear
    assert b.receive_data(wire) == [[b"one"], [b"two", b"x" * 1000], [b""]]
    b.send_messages([[b"back"]])
    assert a.receive_data(b.data_to_send()) == [[b"back"]]


def test_curve_messages_are_plain_frames_with_increasing_nonces() -> None:
    """libzmq's wire form: an ordinary frame holding [7]MESSAGE, nonce 3, 4, ... from the client."""
    a, _ = connected_curve()
    a.send_messages([[b"a", b"b"]])
    wire = a.data_to_send()
    first_size = wire[1]
    first, second = wire[2 : 2 + first_size], wire[2 + first_size + 2 :]
    assert wire[0] == 0 and wire[2 + first_size] == 0  # no COMMAND, no MORE outside the box
    assert first[:8] == second[:8] == b"\x07MESSAGE"
    assert int.from_bytes(first[8:16], "big") == 3
    assert int.from_bytes(second[8:16], "big") == 4


def test_curve_replayed_message_is_refused() -> None:
    a, b = connected_curve()
    a.send_messages([[b"pay 10"]])
    wire = a.data_to_send()
    assert b.receive_data(wire) == [[b"pay 10"]]
    expect_failure(b, wire, PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_INVALID_SEQUENCE)


def test_curve_tampered_message_is_refused() -> None:
    a, b = connected_curve()
    a.send_messages([[b"pay 10"]])
    wire = bytearray(a.data_to_send())
    wire[-1] ^= 0x01
    expect_failure(b, bytes(wire), PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)


def test_curve_message_box_from_the_wrong_direction_is_refused() -> None:
    """A server's own MESSAGE reflected back to it uses the S nonce prefix: it cannot open."""
    _, b = connected_curve()
    b.send_messages([[b"to client"], [b"again"]])
    wire = b.data_to_send()
    reflected = wire[2 + wire[1] :]  # the second one: its nonce (3) is fresh for the server
    expect_failure(b, reflected, PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)


def test_curve_flags_byte_is_checked() -> None:
    """Reserved bits, or MORE together with COMMAND, inside the box close the connection."""
    for flags in (0x04, 0x80, 0x03):
        a, b = connected_curve()
        pieces: list[bytes] = []
        cipher: CurveCipher = a.cipher
        cipher.seal(flags, b"x", pieces)
        expect_failure(
            b, b"".join(pieces), PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_MESSAGE
        )


def test_curve_outer_frame_flags_are_checked() -> None:
    a, b = connected_curve()
    a.send_messages([[b"x"]])
    wire = bytearray(a.data_to_send())
    wire[0] |= 0x01  # MORE on the outer frame
    expect_failure(b, bytes(wire), PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_MESSAGE)


def test_curve_cleartext_frame_in_traffic_is_refused() -> None:
    _, b = connected_curve()
    expect_failure(b, b"\x00\x05hello", PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND)


def test_curve_accepts_command_flag_on_the_outer_frame() -> None:
    """RFC 26 calls MESSAGE a command; libzmq sends it as a data frame. Take both."""
    a, b = connected_curve()
    a.send_messages([[b"x"]])
    wire = bytearray(a.data_to_send())
    wire[0] |= 0x04
    assert b.receive_data(bytes(wire)) == [[b"x"]]


def test_curve_max_message_size_counts_plaintext() -> None:
    a, b = curve_pair(max_message_size=100)
    pump(a, b, allow_all())
    a.send_messages([[b"x" * 100]])
    assert b.receive_data(a.data_to_send()) == [[b"x" * 100]]
    a.send_messages([[b"x" * 60, b"y" * 41]])
    with pytest.raises(ProtocolError):
        b.receive_data(a.data_to_send())


def test_curve_oversized_sealed_frame_refused_before_it_arrives() -> None:
    a, b = curve_pair(max_message_size=100)
    pump(a, b, allow_all())
    huge_header = bytes((0x02,)) + (10**9).to_bytes(8, "big")
    with pytest.raises(ProtocolError, match="maximum message size"):
        b.receive_data(huge_header)


def test_curve_decoding_stops_at_the_limit() -> None:
    """RCVHWM: the limit holds sealed frames back in the buffer, as it does in clear."""
    a, b = connected_curve()
    a.send_messages([[b"1"], [b"2"], [b"3"]])
    assert b.receive_data(a.data_to_send(), limit=2) == [[b"1"], [b"2"]]
    assert b.input_pending
    assert b.receive_data(b"", limit=5) == [[b"3"]]


def test_curve_subscriptions_and_heartbeats_are_sealed() -> None:
    sub, xpub = curve_pair(engine.SUB, engine.XPUB)
    pump(sub, xpub, allow_all())
    sub.send_messages([[b"\x01topic"]])
    wire = sub.data_to_send()
    assert b"SUBSCRIBE" not in wire and b"topic" not in wire
    assert xpub.receive_data(wire) == [[b"\x01topic"]]
    assert sub.send_ping(30, b"ctx")
    ping = sub.data_to_send()
    assert b"PING" not in ping
    xpub.receive_data(ping)
    pong = xpub.data_to_send()
    assert b"PONG" not in pong and pong
    sub.receive_data(pong)
    assert [type(e).__name__ for e in sub.pop_events()][-1] == "PongReceived"


def test_curve_subscription_to_a_zmtp30_peer_is_a_sealed_data_frame() -> None:
    sub = ZMTPConnection(engine.SUB, mechanism=curve_client(SERVER, CLIENT))
    pub = ZMTPConnection(engine.PUB, mechanism=CurveServer(SERVER.secret), minor_version=0)
    pump(sub, pub, allow_all())
    sub.send_messages([[b"\x01t"]])
    assert pub.receive_data(sub.data_to_send()) == [[b"\x01t"]]


def test_curve_wrong_server_key_fails_at_hello() -> None:
    a = ZMTPConnection(engine.DEALER, mechanism=curve_client(Keys.new(), CLIENT))
    b = ZMTPConnection(engine.ROUTER, mechanism=CurveServer(SERVER.secret))
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    expect_failure(b, a.data_to_send(), PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
    assert b.data_to_send() == b""  # RFC 26: no ERROR for a HELLO that does not open


def test_curve_client_rejects_a_welcome_from_another_server() -> None:
    """A man in the middle sees C' in the HELLO and can box a WELCOME to it, but not as S."""
    import nacl.bindings as sodium

    impostor = Keys.new()
    a = ZMTPConnection(engine.DEALER, mechanism=curve_client(SERVER, CLIENT))
    a.receive_data(ZMTPConnection(engine.ROUTER, mechanism=curve_server(impostor)).data_to_send())
    hello = a.data_to_send()[64 + 2 :]
    client_transient = hello[80:112]
    t_public, _ = sodium.crypto_box_keypair()
    nonce = bytes(16)
    box = sodium.crypto_box(
        t_public + bytes(96), b"WELCOME-" + nonce, client_transient, impostor.secret
    )
    welcome = encode_command(b"WELCOME", nonce + box)
    expect_failure(a, welcome, PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)


def test_curve_low_order_transient_keys_are_protocol_errors() -> None:
    """A transient key with no shared secret (the all-zero point) is refused as a
    cryptographic failure on either side, never an exception out of the codec."""
    import nacl.bindings as sodium

    a, b = curve_pair()
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    hello = bytearray(a.data_to_send()[2:])  # the HELLO command, after its short header
    start = 1 + len(b"HELLO") + 2 + 72  # name, version, padding: then C'
    hello[start : start + 32] = bytes(32)
    expect_failure(b, encode_command(*_split(bytes(hello))), PROTOCOL, CRYPTO)

    # The real server's WELCOME naming the all-zero point as its transient key.
    a = ZMTPConnection(engine.DEALER, mechanism=curve_client(SERVER, CLIENT))
    a.receive_data(ZMTPConnection(engine.ROUTER, mechanism=curve_server(SERVER)).data_to_send())
    client_transient = a.data_to_send()[64 + 2 :][80:112]
    nonce = bytes(16)
    box = sodium.crypto_box(
        bytes(32) + bytes(96), b"WELCOME-" + nonce, client_transient, SERVER.secret
    )
    expect_failure(a, encode_command(b"WELCOME", nonce + box), PROTOCOL, CRYPTO)


CRYPTO = engine.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC


def test_curve_cookie_expires() -> None:
    now = [1000.0]
    a, b = curve_pair(clock=lambda: now[0])
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())  # HELLO -> WELCOME
    a.receive_data(b.data_to_send())  # WELCOME -> INITIATE
    now[0] += COOKIE_LIFETIME_S + 1
    expect_failure(b, a.data_to_send(), PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)


def test_curve_cookie_is_bound_to_its_connection() -> None:
    """An INITIATE carrying another connection's cookie (the cookie keys differ) is refused."""
    a1, b1 = curve_pair()
    a2, b2 = curve_pair()
    for a, b in ((a1, b1), (a2, b2)):
        b.receive_data(a.data_to_send())
        a.receive_data(b.data_to_send())
        b.receive_data(a.data_to_send())
        a.receive_data(b.data_to_send())
    expect_failure(b2, a1.data_to_send(), PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h: h[:-1], engine.PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO),
        (lambda h: h[:6] + b"\x02" + h[7:], engine.PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO),
        (lambda h: h[:8] + b"\x01" + h[9:], engine.PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO),
        (lambda h: b"\x05HELLX" + h[6:], engine.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND),
    ],
)
def test_curve_malformed_hello(mutate, code: int) -> None:
    a, b = curve_pair()
    b.receive_data(a.data_to_send())
    a.receive_data(b.data_to_send())
    hello = a.data_to_send()
    assert hello[:2] == b"\x04\xc8"  # a 200-octet command
    expect_failure(b, encode_command(*_split(mutate(hello[2:]))), PROTOCOL, code)


def _split(body: bytes) -> tuple[bytes, bytes]:
    return body[1 : 1 + body[0]], body[1 + body[0] :]


def test_curve_zap_request_carries_the_client_key() -> None:
    a = ZMTPConnection(engine.DEALER, mechanism=curve_client(SERVER, CLIENT))
    zap = ZapSettings(domain="game", address="192.0.2.7", routing_id=b"front")
    b = ZMTPConnection(engine.ROUTER, mechanism=CurveServer(SERVER.secret, zap=zap))
    for _ in range(3):
        b.receive_data(a.data_to_send())
        a.receive_data(b.data_to_send())
    requests = [e.request for e in b.pop_events() if isinstance(e, ZapRequested)]
    assert [r.to_frames() for r in requests] == [
        [b"1.0", b"1", b"game", b"192.0.2.7", b"front", b"CURVE", CLIENT.public]
    ]
    assert b.state is State.HANDSHAKE  # READY waits for the verdict
    b.zap_reply(ZapReply(200, "OK", "player-7").to_frames())
    a.receive_data(b.data_to_send())
    assert a.state is State.TRAFFIC and b.state is State.TRAFFIC


@pytest.mark.parametrize(("status", "sends_error"), [(300, False), (400, True), (500, True)])
def test_curve_zap_refusal(status: int, sends_error: bool) -> None:
    a, b = curve_pair()
    for _ in range(3):
        b.receive_data(a.data_to_send())
        a.receive_data(b.data_to_send())
    b.pop_events()
    with pytest.raises(AuthenticationFailed) as failure:
        b.zap_reply(ZapReply(status, "no").to_frames())
    assert (failure.value.event, failure.value.value) == (
        engine.EVENT_HANDSHAKE_FAILED_AUTH,
        status,
    )
    out = b.data_to_send()
    assert (out == encode_command(b"ERROR", b"\x03" + str(status).encode())) is sends_error
    if sends_error:
        with pytest.raises(AuthenticationFailed) as heard:
            a.receive_data(out)
        assert heard.value.value == status
        assert [e for e in a.pop_events() if isinstance(e, PeerError)] == [PeerError(str(status))]


def test_curve_without_zap_handler_lets_clients_in_unless_enforced() -> None:
    a, b = curve_pair()
    pump(a, b, auth=None)
    assert b.state is State.TRAFFIC
    a, b = curve_pair(zap=ZapSettings(enforce=True, domain="x"))
    with pytest.raises(HandshakeFailed) as failure:
        pump(a, b, auth=None)
    assert failure.value.event == engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL


def test_curve_bad_zap_reply_fails_with_zap_code() -> None:
    a, b = curve_pair()
    for _ in range(3):
        b.receive_data(a.data_to_send())
        a.receive_data(b.data_to_send())
    with pytest.raises(ProtocolError) as failure:
        b.zap_reply([b"1.0", b"1", b"999", b"", b"", b""])
    assert failure.value.value == engine.PROTOCOL_ERROR_ZAP_INVALID_STATUS_CODE


def test_zap_reply_when_none_was_asked_is_refused() -> None:
    _, b = curve_pair()
    with pytest.raises(ProtocolError):
        b.zap_reply(ZapReply(200).to_frames())


# -- PLAIN ------------------------------------------------------------------------------------------


def test_plain_handshake_and_user_id() -> None:
    a = ZMTPConnection(engine.REQ, mechanism=PlainClient(b"user", b"pass"))
    b = ZMTPConnection(engine.REP, mechanism=PlainServer(zap=ZapSettings(address="127.0.0.1")))
    log = pump(a, b, allow_all())
    done = [e for e in log.of(b) if isinstance(e, HandshakeComplete)]
    assert done[0].properties["user-id"] == b"user"
    assert b"\x04user\x04pass" in log.sent_by(a)  # PLAIN is clear text, by design


@pytest.mark.parametrize(
    "hello",
    [b"", b"\x05user", b"\x04user", b"\x04user\x05pass", b"\x04user\x04pass!", b"\xffx"],
)
def test_plain_malformed_hello(hello: bytes) -> None:
    b = ZMTPConnection(engine.REP, mechanism=PlainServer())
    greeting = ZMTPConnection(engine.REQ, mechanism=PlainClient(b"", b"")).data_to_send()
    b.receive_data(greeting)
    expect_failure(
        b,
        encode_command(b"HELLO", hello),
        PROTOCOL,
        engine.PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_HELLO,
    )


def test_plain_wrong_password() -> None:
    auth = Authenticator()
    auth.configure_plain(passwords={"user": "pass"})
    a = ZMTPConnection(engine.REQ, mechanism=PlainClient(b"user", b"nope"))
    b = ZMTPConnection(engine.REP, mechanism=PlainServer())
    with pytest.raises(AuthenticationFailed):
        pump(a, b, auth)
    with pytest.raises(AuthenticationFailed):
        a.receive_data(b.data_to_send())


def test_plain_client_takes_libzmq_misspelt_error() -> None:
    a = ZMTPConnection(engine.REQ, mechanism=PlainClient(b"u", b"p"))
    a.receive_data(ZMTPConnection(engine.REP, mechanism=PlainServer()).data_to_send())
    with pytest.raises(AuthenticationFailed) as failure:
        a.receive_data(b"\x04\x09^RROR\x03400")
    assert failure.value.value == 400


# -- NULL with ZAP, and mechanism negotiation ---------------------------------------------------------


def test_null_asks_zap_only_with_a_domain() -> None:
    a = ZMTPConnection(engine.PUSH)
    b = ZMTPConnection(engine.PULL, mechanism=NullMechanism(zap=ZapSettings(domain="d")))
    b.receive_data(a.data_to_send())
    b_greeting = b.data_to_send()
    assert b"READY" not in b_greeting  # held until the verdict
    a.receive_data(b_greeting)
    requests = [e.request for e in b.pop_events() if isinstance(e, ZapRequested)]
    assert [(r.mechanism, r.credentials, r.domain) for r in requests] == [(b"NULL", (), "d")]
    b.zap_reply(ZapReply(200).to_frames())
    a.receive_data(b.data_to_send())
    b.receive_data(a.data_to_send())
    assert a.state is State.TRAFFIC and b.state is State.TRAFFIC


def test_null_zap_denial_sends_error() -> None:
    auth = Authenticator()
    auth.deny("10.1.1.1")
    a = ZMTPConnection(engine.PUSH)
    zap = ZapSettings(domain="d", address="10.1.1.1")
    b = ZMTPConnection(engine.PULL, mechanism=NullMechanism(zap=zap))
    with pytest.raises(AuthenticationFailed):
        pump(a, b, auth)
    with pytest.raises(AuthenticationFailed):
        a.receive_data(b.data_to_send())


@pytest.mark.parametrize(
    "other",
    [
        lambda: NullMechanism(),
        lambda: PlainClient(b"u", b"p"),
    ],
)
def test_mechanism_mismatch(other) -> None:
    a = ZMTPConnection(engine.DEALER, mechanism=other())
    b = ZMTPConnection(engine.ROUTER, mechanism=curve_server(SERVER))
    expect_failure(b, a.data_to_send(), PROTOCOL, engine.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)


def test_incompatible_socket_type_under_curve() -> None:
    a, b = curve_pair(engine.PUSH, engine.ROUTER)
    with pytest.raises(ProtocolError) as failure:
        pump(a, b, allow_all())
    assert failure.value.value == engine.PROTOCOL_ERROR_ZMTP_INVALID_METADATA


def test_greetings_name_the_mechanism_and_role() -> None:
    client = ZMTPConnection(engine.DEALER, mechanism=curve_client(SERVER, CLIENT)).data_to_send()
    server = ZMTPConnection(engine.ROUTER, mechanism=curve_server(SERVER)).data_to_send()
    assert client[12:32] == server[12:32] == b"CURVE".ljust(20, b"\x00")
    assert (client[32], server[32]) == (0, 1)
