"""METADATA: properties of the application's own that the handshake tells each peer.

libzmq 4.3.5 takes `setsockopt(METADATA, b"X-Name:value")` (not a draft option: pyzmq's
build takes it) and a peer reads the value from any message of that connection,
`frame.get("X-Name")`. The engine had no such option (pyzmq lists it; the engine's
setsockopt said it takes an int). The rules are checked against libzmq's own verdicts, and
the properties cross between the two libraries both ways, in clear and under CURVE.
"""

from __future__ import annotations

from typing import Any

import pytest
import zmq as pyzmq
from libkit import LIBS

import engine

pytestmark = pytest.mark.timeout(60)

PAIRS = pytest.mark.parametrize(
    ("lib", "peer"),
    [(engine, pyzmq), (pyzmq, engine), (engine, engine)],
    ids=["engine-to-libzmq", "libzmq-to-engine", "engine-to-engine"],
)

TAKEN = [b"X-Color:blue", b"X-Color:red", b"X-e:a:b", b"X-u:z\x00ignored", b"X-ab::"]
TAKEN.append(b"X-" + b"k" * 253 + b":v")
REFUSED = [
    b"Color:blue",
    b"X-Color",
    b":blue",
    b"X-ab:",
    b"x-low:v",
    b"",
    b"X-" + b"k" * 254 + b":v",
]


@LIBS
def test_metadata_takes_x_names_with_values_and_is_never_read(lib: Any) -> None:
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.DEALER)
        for value in TAKEN:
            sock.setsockopt(lib.METADATA, value)
        for value in REFUSED:
            with pytest.raises(lib.ZMQError) as refused:
                sock.setsockopt(lib.METADATA, value)
            assert refused.value.errno == lib.EINVAL, value
        with pytest.raises(TypeError):
            sock.setsockopt(lib.METADATA, 5)
        with pytest.raises(lib.ZMQError) as unread:
            sock.getsockopt(lib.METADATA)
        assert unread.value.errno == lib.EINVAL
    finally:
        ctx.destroy(linger=0)


def _received(receiver: Any) -> list[Any]:
    assert receiver.poll(10_000), "nothing arrived"
    return receiver.recv_multipart(copy=False)


@PAIRS
@pytest.mark.parametrize("curve", [False, True], ids=["null", "curve"])
def test_each_side_reads_what_the_other_announced(lib: Any, peer: Any, curve: bool) -> None:
    """The first value given a name is the one sent; a value ends at a NUL (libzmq reads the
    option as a C string); a name the peer did not send is EINVAL."""
    ctx, peer_ctx = lib.Context(), peer.Context()
    try:
        router = peer_ctx.socket(peer.ROUTER)
        router.setsockopt(peer.METADATA, b"X-Region:nz")
        dealer = ctx.socket(lib.DEALER)
        for value in TAKEN:
            dealer.setsockopt(lib.METADATA, value)
        if curve:
            server_public, server_secret = pyzmq.curve_keypair()
            client_public, client_secret = pyzmq.curve_keypair()
            router.setsockopt(peer.CURVE_SERVER, 1)
            router.setsockopt(peer.CURVE_SECRETKEY, server_secret)
            dealer.setsockopt(lib.CURVE_SERVERKEY, server_public)
            dealer.setsockopt(lib.CURVE_PUBLICKEY, client_public)
            dealer.setsockopt(lib.CURVE_SECRETKEY, client_secret)
        router.bind("tcp://127.0.0.1:0")
        dealer.connect(router.getsockopt(peer.LAST_ENDPOINT).decode())
        dealer.send(b"hello")
        routing_id, frame = _received(router)
        assert frame.get("X-Color") == "blue"
        assert frame.get("X-e") == "a:b"
        assert frame.get("X-u") == "z"
        assert frame.get("X-ab") == ":"
        assert frame.get("X-" + "k" * 253) == "v"
        assert frame.get("Socket-Type") == "DEALER"
        with pytest.raises(peer.ZMQError):
            frame.get("X-Absent")
        router.send_multipart([routing_id.bytes, b"back"])
        assert _received(dealer)[0].get("X-Region") == "nz"
    finally:
        ctx.destroy(linger=0)
        peer_ctx.destroy(linger=0)
