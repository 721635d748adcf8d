"""A connection that ends on a protocol error is not redialled, as libzmq (pyzmq) does it.

libzmq ends a connecting session for good when the peer breaks the protocol (a greeting with
another security mechanism, an ERROR command such as a ZAP refusal, a message over
MAXMSGSIZE) and redials only a connection that merely failed (closed, reset, timed out),
whatever RECONNECT_STOP says. The endpoint stays until disconnect(), and the session's pipe
goes: a DEALER sends its share to the peers it still has. The engine redialled every 100 ms
(RECONNECT_IVL) for ever, and kept queueing a share of a DEALER's messages for the broken
peer. Each test runs the same code on both libraries.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from enginekit import monitor_events, zap_handler

from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

RECONNECT_IVL_MS = 50
#: How long a connecter that gave up is watched for a redial it must not make: five of its
#: RECONNECT_IVL (a redial comes after one).
QUIET_S = 0.25
WAIT_S = 10.0


def _greeting(mechanism: bytes) -> bytes:
    """A ZMTP 3.1 greeting (RFC 37): signature, version, mechanism, as-server, filler."""
    return (
        b"\xff"
        + bytes(8)
        + b"\x7f"
        + b"\x03\x01"
        + mechanism.ljust(20, b"\0")
        + b"\x01"
        + bytes(31)
    )


@contextmanager
def _plain_speaker() -> Iterator[tuple[int, list[socket.socket]]]:
    """A raw tcp peer that greets every connection as a PLAIN server; its port and what it
    accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.sendall(_greeting(b"PLAIN"))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def _refusing_zap(lib: Any, ctx: Any) -> AbstractContextManager[None]:
    """A ZAP handler in ``ctx`` that answers 400 to every request."""
    return zap_handler(lib, ctx, lambda request: [b"400", b"no", b"", b""])


def _dealer(lib: Any, ctx: Any) -> tuple[Any, Any]:
    dealer = ctx.socket(lib.DEALER)
    dealer.setsockopt(lib.RECONNECT_IVL, RECONNECT_IVL_MS)
    dealer.setsockopt(lib.LINGER, 0)
    return dealer, dealer.get_monitor_socket()


@LIBS
def test_a_peer_speaking_another_mechanism_is_not_redialled(lib: Any) -> None:
    ctx = lib.Context()
    try:
        with _plain_speaker() as (port, accepted):
            dealer, monitor = _dealer(lib, ctx)  # NULL
            dealer.connect(f"tcp://127.0.0.1:{port}")
            names = monitor_events(lib, monitor, "DISCONNECTED", WAIT_S)
            assert names[-2:] == ["HANDSHAKE_FAILED_PROTOCOL", "DISCONNECTED"], names
            assert monitor_events(lib, monitor, None, QUIET_S) == []
            assert len(accepted) == 1
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_zap_refusal_is_not_redialled(lib: Any) -> None:
    ctx = lib.Context()
    try:
        with _refusing_zap(lib, ctx):
            server = ctx.socket(lib.ROUTER)
            server.plain_server = True
            server.bind("tcp://127.0.0.1:0")
            dealer, monitor = _dealer(lib, ctx)
            dealer.plain_username, dealer.plain_password = b"someone", b"wrong"
            dealer.connect(server.getsockopt(lib.LAST_ENDPOINT).decode())
            names = monitor_events(lib, monitor, "DISCONNECTED", WAIT_S)
            assert names[-2:] == ["HANDSHAKE_FAILED_AUTH", "DISCONNECTED"], names
            assert monitor_events(lib, monitor, None, QUIET_S) == []
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_an_oversized_message_after_the_handshake_is_not_redialled(lib: Any) -> None:
    ctx = lib.Context()
    try:
        server = ctx.socket(lib.ROUTER)
        server.bind("tcp://127.0.0.1:0")
        dealer, monitor = _dealer(lib, ctx)
        dealer.setsockopt(lib.MAXMSGSIZE, 64)  # above the peer's READY, below its message
        dealer.connect(server.getsockopt(lib.LAST_ENDPOINT).decode())
        dealer.send(b"hello")
        assert server.poll(int(WAIT_S * 1000))
        peer, _ = server.recv_multipart()
        server.send_multipart([peer, b"x" * 200])
        names = monitor_events(lib, monitor, "DISCONNECTED", WAIT_S)
        assert names[-2:] == ["HANDSHAKE_SUCCEEDED", "DISCONNECTED"], names
        assert monitor_events(lib, monitor, None, QUIET_S) == []
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_the_broken_peer_leaves_the_dealer_and_its_endpoint_stays(lib: Any) -> None:
    """After the failure the DEALER sends only to the peer it still has; the endpoint stays
    until disconnect(), once; a new connect tries again."""
    ctx = lib.Context()
    try:
        with _plain_speaker() as (port, accepted):
            good = ctx.socket(lib.ROUTER)
            good.bind("tcp://127.0.0.1:0")
            dealer, monitor = _dealer(lib, ctx)
            broken = f"tcp://127.0.0.1:{port}"
            dealer.connect(broken)
            assert monitor_events(lib, monitor, "DISCONNECTED", WAIT_S)[-1] == "DISCONNECTED"
            # Its pipe goes (libzmq hands that over to the socket as a command, which the
            # socket takes when asked for EVENTS): no peer left to send to.
            deadline = time.monotonic() + WAIT_S
            while dealer.getsockopt(lib.EVENTS) & lib.POLLOUT and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not dealer.getsockopt(lib.EVENTS) & lib.POLLOUT
            dealer.connect(good.getsockopt(lib.LAST_ENDPOINT).decode())
            for n in range(10):
                dealer.send(b"%d" % n)
            got = []
            while len(got) < 10 and good.poll(int(WAIT_S * 1000)):
                got.append(good.recv_multipart()[-1])
            assert got == [b"%d" % n for n in range(10)]

            dealer.disconnect(broken)
            with pytest.raises(lib.ZMQError) as gone:
                dealer.disconnect(broken)
            assert gone.value.errno == errno.ENOENT
            dealer.connect(broken)
            names = monitor_events(lib, monitor, "HANDSHAKE_FAILED_PROTOCOL", WAIT_S)
            assert names[-1] == "HANDSHAKE_FAILED_PROTOCOL", names
            assert len(accepted) == 2
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_peer_that_merely_closes_is_redialled(lib: Any) -> None:
    """The other side of the rule: a connection closed before any greeting is a connection
    error, and the connecter dials again."""
    listener = socket.create_server(("127.0.0.1", 0))
    ctx = lib.Context()
    try:
        dealer, monitor = _dealer(lib, ctx)
        dealer.connect(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        for _ in range(2):
            conn, _ = listener.accept()
            conn.close()
            names = monitor_events(lib, monitor, "CONNECT_RETRIED", WAIT_S)
            assert names[-1] == "CONNECT_RETRIED", names
    finally:
        listener.close()
        ctx.destroy(linger=0)
