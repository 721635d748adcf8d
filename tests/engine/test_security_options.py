"""The security options behave as libzmq's: the same steps on an engine socket and a pyzmq
socket leave the same MECHANISM, CURVE_SERVER and PLAIN_SERVER."""

from __future__ import annotations

import pytest
import zmq
from enginekit import same_verdict_as_libzmq

import engine
from engine.security.curve import CurveClient, CurveServer
from engine.security.null import NullMechanism
from engine.security.options import check_security, make_mechanism
from engine.security.plain import PlainClient, PlainServer

PUBLIC, SECRET = zmq.curve_keypair()

STEPS = {
    "curve server": [("curve_secretkey", SECRET), ("curve_server", 1)],
    "curve client": [
        ("curve_publickey", PUBLIC),
        ("curve_secretkey", SECRET),
        ("curve_serverkey", PUBLIC),
    ],
    "server, then serverkey": [("curve_server", 1), ("curve_serverkey", PUBLIC)],
    "curve off again": [("curve_server", 1), ("curve_server", 0)],
    "plain server": [("plain_server", 1)],
    "plain client": [("plain_username", b"u"), ("plain_password", b"p")],
    "plain server then password": [("plain_server", 1), ("plain_password", b"p")],
    "plain then curve": [("plain_username", b"u"), ("curve_server", 1)],
    "keys only": [("curve_publickey", PUBLIC)],
}


@pytest.mark.parametrize("steps", list(STEPS.values()), ids=list(STEPS))
def test_same_mechanism_as_libzmq(steps: list[tuple[str, object]]) -> None:
    zctx, ectx = zmq.Context(), engine.Context()
    try:
        theirs, ours = zctx.socket(zmq.DEALER), ectx.socket(engine.DEALER)
        for name, value in steps:
            setattr(theirs, name, value)
            setattr(ours, name, value)
        for option in ("MECHANISM", "CURVE_SERVER", "PLAIN_SERVER"):
            assert ours.getsockopt(getattr(engine, option)) == theirs.getsockopt(
                getattr(zmq, option)
            ), option
    finally:
        zctx.destroy(linger=0)
        ectx.destroy(linger=0)


def test_keys_read_back_as_z85_and_bad_values_refused() -> None:
    ctx = engine.Context()
    try:
        sock = ctx.socket(engine.DEALER)
        sock.curve_secretkey = engine.z85_decode(SECRET)  # raw bytes are fine too
        assert sock.curve_secretkey == SECRET
        sock.setsockopt_string(engine.CURVE_PUBLICKEY, PUBLIC.decode())
        assert sock.getsockopt_string(engine.CURVE_PUBLICKEY) == PUBLIC.decode()
        for option, value in (
            (engine.CURVE_SERVERKEY, b"too short"),
            (engine.PLAIN_USERNAME, b"u" * 256),
            (engine.ZAP_DOMAIN, b"d" * 256),
        ):
            with pytest.raises(engine.ZMQError) as failure:
                sock.setsockopt(option, value)
            assert failure.value.errno == engine.EINVAL
        with pytest.raises(engine.ZMQError):
            sock.setsockopt(engine.MECHANISM, engine.CURVE)
        assert sock.handshake_ivl == 30000
        assert sock.zap_enforce_domain == 0
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("CURVE_SERVER", 2),
        ("CURVE_SERVER", -1),
        ("PLAIN_SERVER", 5),
        ("PLAIN_SERVER", True),
        ("CURVE_SERVER", 0),
        ("PLAIN_USERNAME", b""),
        ("PLAIN_PASSWORD", b""),
        ("ZAP_DOMAIN", b""),
        ("PLAIN_PASSWORD", b"p"),
    ],
)
def test_security_values_are_taken_exactly_when_libzmq_takes_them(
    option: str, value: int | bytes
) -> None:
    """CURVE_SERVER 2 or an empty PLAIN_PASSWORD: EINVAL in libzmq, and they used to be kept
    (the empty password even switched the socket to PLAIN)."""
    zctx, ectx = zmq.Context(), engine.Context()
    try:
        theirs, ours = zctx.socket(zmq.DEALER), ectx.socket(engine.DEALER)
        same_verdict_as_libzmq(
            f"{option} = {value!r}",
            lambda: theirs.setsockopt(getattr(zmq, option), value),
            lambda: ours.setsockopt(getattr(engine, option), value),
        )
        assert ours.getsockopt(engine.MECHANISM) == theirs.getsockopt(zmq.MECHANISM)
        theirs.close(linger=0)
    finally:
        zctx.destroy(linger=0)
        ectx.destroy(linger=0)


def test_options_choose_the_mechanism() -> None:
    ctx = engine.Context()
    try:
        sock = ctx.socket(engine.ROUTER)
        opts = sock._core.options
        assert isinstance(make_mechanism(opts), NullMechanism)
        sock.plain_server = True
        assert isinstance(make_mechanism(opts), PlainServer)
        sock.plain_username = b"u"
        assert isinstance(make_mechanism(opts), PlainClient)
        sock.curve_server = True
        with pytest.raises(engine.ZMQError, match="CURVE_SECRETKEY"):
            check_security(opts)
        sock.curve_secretkey = SECRET
        check_security(opts)
        server = make_mechanism(opts, "10.0.0.1")
        assert isinstance(server, CurveServer) and server.zap.address == "10.0.0.1"
        sock.curve_serverkey = PUBLIC
        with pytest.raises(engine.ZMQError, match="CURVE_PUBLICKEY"):
            check_security(opts)
        sock.curve_publickey = PUBLIC
        check_security(opts)
        assert isinstance(make_mechanism(opts), CurveClient)
    finally:
        ctx.destroy(linger=0)
