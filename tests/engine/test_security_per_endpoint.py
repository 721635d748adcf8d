"""Security options apply per endpoint, as they stood at bind() or connect(), as in libzmq.

A socket that binds one endpoint as a CURVE server and then, with other options, a PLAIN one
speaks CURVE on the first and PLAIN on the second (libzmq's listeners copy the socket's options
when they are made). The same steps run on pyzmq's sockets first, so the test shows libzmq's
behaviour rather than assuming it, then on the engine's.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from types import ModuleType

import pytest
import zmq
import zmq.auth.thread

import engine
import engine.auth.thread

PUBLIC, SECRET = zmq.curve_keypair()
CLIENT_PUBLIC, CLIENT_SECRET = zmq.curve_keypair()
WAIT_S = 10.0
FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


def wait_for_failure(monitor: zmq.Socket) -> int:
    """The first HANDSHAKE_FAILED_* event on `monitor` (a PAIR from get_monitor_socket)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if monitor.poll(50):
            event, _ = struct.unpack("=HI", monitor.recv_multipart()[0][:6])
            if event & FAILED:
                return event
    raise AssertionError("no handshake failure reported")


def receive(router: zmq.Socket) -> bytes:
    assert router.poll(int(WAIT_S * 1000)), "nothing arrived"
    return router.recv_multipart()[-1]


@pytest.mark.parametrize("lib", [zmq, engine], ids=["libzmq", "engine"])
def test_each_endpoint_keeps_the_mechanism_it_was_bound_with(
    lib: ModuleType, tmp_path: Path
) -> None:
    ctx = lib.Context()
    # libzmq's PLAIN server needs a ZAP handler to judge passwords (CURVE goes on without one).
    auth = lib.auth.thread.ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_plain(domain="*", passwords={"worker": "secret"})
    auth.configure_curve(domain="*", location=lib.auth.CURVE_ALLOW_ANY)
    try:
        router = ctx.socket(lib.ROUTER)
        router.linger = 0
        router.curve_secretkey = SECRET
        router.curve_server = 1
        router.bind("tcp://127.0.0.1:0")
        curve_endpoint = router.getsockopt_string(lib.LAST_ENDPOINT)
        router.curve_server = 0  # back to NULL, then PLAIN for the next endpoint only
        router.plain_server = 1
        plain_endpoint = f"ipc://{tmp_path}/plain"
        router.bind(plain_endpoint)

        # A NULL peer on the CURVE endpoint: refused at the handshake, its message never read.
        stranger = ctx.socket(lib.DEALER)
        stranger.linger = 0
        watch = stranger.get_monitor_socket()
        stranger.connect(curve_endpoint)
        try:
            stranger.send(b"from a stranger", lib.NOBLOCK)
        except lib.Again:
            pass  # the handshake failed first: a protocol error ends the session, pipe and all
        assert wait_for_failure(watch) & FAILED

        curve = ctx.socket(lib.DEALER)
        curve.linger = 0
        curve.curve_serverkey = PUBLIC
        curve.curve_publickey = CLIENT_PUBLIC
        curve.curve_secretkey = CLIENT_SECRET
        curve.connect(curve_endpoint)
        curve.send(b"over curve")
        assert receive(router) == b"over curve"

        plain = ctx.socket(lib.DEALER)
        plain.linger = 0
        plain.plain_username = b"worker"
        plain.plain_password = b"secret"
        plain.connect(plain_endpoint)
        plain.send(b"over plain")
        assert receive(router) == b"over plain"
        assert router.poll(0) == 0  # the stranger's message never came
    finally:
        auth.stop()
        ctx.destroy(linger=0)
