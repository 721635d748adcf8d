"""The sans-I/O codec with PLAIN and CURVE against real libzmq 4.3.5 sockets (pyzmq).

Our side is a ZMTPConnection with a mechanism, driven over a plain Python socket (securitykit);
libzmq's side is a pyzmq socket with its own ZAP handler (pyzmq's ThreadAuthenticator). Both
directions, tcp and ipc: messages flow, and a wrong server key, an unknown client key and a ZAP
denial are refused, with libzmq's monitor events on its side and our codec's errors on ours.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

import engine
from engine.auth import CURVE_ALLOW_ANY, Authenticator, create_certificates, load_certificate
from engine.security.commands import AuthenticationFailed, ProtocolError
from engine.security.mechanism import ZapSettings
from engine.security.plain import PlainClient, PlainServer
from engine.zmtp import PingReceived, PongReceived
from tests.engine.securitykit import (
    CodecPeer,
    Endpoints,
    Keys,
    accept,
    codec,
    curve_client,
    curve_server,
    endpoints,
    monitor_events,
    remove,
    temp_dir,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]

TRANSPORTS = ["tcp", "ipc"]
BIG = bytes(range(256)) * 300  # 76,800 bytes: long frames, several reads


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@contextlib.contextmanager
def libzmq_auth(ctx: zmq.Context) -> Iterator[ThreadAuthenticator]:
    auth = ThreadAuthenticator(ctx)
    auth.start()
    try:
        yield auth
    finally:
        auth.stop()


@pytest.fixture
def keydir() -> Iterator[str]:
    path = temp_dir()
    yield path
    remove(path)


def bind(sock: zmq.Socket, eps: Endpoints) -> str:
    sock.bind(eps.bind_address())
    return sock.last_endpoint.decode()


def libzmq_curve_server(ctx: zmq.Context, kind: int, server: Keys) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.curve_secretkey = server.secret_z85
    sock.curve_publickey = server.public_z85
    sock.curve_server = True
    return sock


def libzmq_curve_client(ctx: zmq.Context, kind: int, server: Keys, client: Keys) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.curve_serverkey = server.public_z85
    sock.curve_publickey = client.public_z85
    sock.curve_secretkey = client.secret_z85
    return sock


# -- CURVE: engine as client ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_curve_engine_client_to_libzmq_server(
    ctx: zmq.Context, keydir: str, transport: str
) -> None:
    """Our certificate files, read by pyzmq's authenticator; messages both ways, big and small."""
    server = Keys.new()
    _, secret_file = create_certificates(keydir, "client", {"role": "test"})
    client = Keys(*load_certificate(secret_file))
    with libzmq_auth(ctx) as auth, endpoints(transport) as eps:
        auth.configure_curve(domain="*", location=keydir)
        router = libzmq_curve_server(ctx, zmq.ROUTER, server)
        monitor = router.get_monitor_socket()
        endpoint = bind(router, eps)
        peer = CodecPeer(eps.connect(endpoint), codec(engine.DEALER, curve_client(server, client)))
        peer.handshake()
        monitor_events(monitor, {zmq.EVENT_HANDSHAKE_SUCCEEDED})
        peer.send([b"hello", BIG], [b""])
        frames = router.recv_multipart(copy=False)
        assert [f.bytes for f in frames[1:]] == [b"hello", BIG]
        assert frames[1].get("User-Id") == client.public_z85.decode()
        assert router.recv_multipart()[1:] == [b""]
        router.send_multipart([frames[0].bytes, b"back", BIG])
        assert peer.receive() == [[b"back", BIG]]
        peer.sock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_curve_engine_sub_to_libzmq_pub(ctx: zmq.Context, transport: str) -> None:
    """SUBSCRIBE travels sealed as a command; the publisher filters by it."""
    server, client = Keys.new(), Keys.new()
    with endpoints(transport) as eps:  # no ZAP handler: libzmq lets any CURVE client in
        pub = libzmq_curve_server(ctx, zmq.PUB, server)
        endpoint = bind(pub, eps)
        peer = CodecPeer(eps.connect(endpoint), codec(engine.SUB, curve_client(server, client)))
        peer.handshake()
        peer.send([b"\x01news"])
        got: list[list[bytes]] = []

        def published() -> bool:
            pub.send_multipart([b"sport", b"no"])
            pub.send_multipart([b"news", b"yes"])
            got.extend(peer.inbox)
            peer.inbox.clear()
            return bool(got)

        peer.run_until(published)
        assert all(m == [b"news", b"yes"] for m in got)
        peer.sock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_curve_heartbeats_travel_sealed(ctx: zmq.Context, transport: str) -> None:
    """libzmq's PINGs arrive as sealed commands and our PONGs keep it from timing us out."""
    server, client = Keys.new(), Keys.new()
    with endpoints(transport) as eps:
        rep = libzmq_curve_server(ctx, zmq.ROUTER, server)
        rep.heartbeat_ivl = 50
        rep.heartbeat_timeout = 300
        monitor = rep.get_monitor_socket()
        endpoint = bind(rep, eps)
        peer = CodecPeer(eps.connect(endpoint), codec(engine.DEALER, curve_client(server, client)))
        peer.handshake()
        monitor_events(monitor, {zmq.EVENT_HANDSHAKE_SUCCEEDED})
        peer.pump_for(1.0)  # more than three heartbeat timeouts
        assert sum(isinstance(e, PingReceived) for e in peer.events) >= 5
        assert peer.codec.send_ping(10, b"ctx")
        peer.flush()
        peer.run_until(lambda: any(isinstance(e, PongReceived) for e in peer.events))
        assert [e for e in peer.events if isinstance(e, PongReceived)] == [PongReceived(b"ctx")]
        peer.send([b"still here"])
        assert rep.recv_multipart()[1:] == [b"still here"]
        assert not monitor.poll(0)  # no disconnect was reported
        peer.sock.close()


# -- CURVE: engine as server ----------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_curve_libzmq_client_to_engine_server(
    ctx: zmq.Context, keydir: str, transport: str
) -> None:
    """pyzmq's certificate files, read by our authenticator; the user id is the client's key."""
    server = Keys.new()
    _, secret_file = zmq.auth.create_certificates(keydir, "client")
    client = Keys(*zmq.auth.load_certificate(secret_file))
    auth = Authenticator()
    auth.configure_curve(domain="*", location=keydir)
    with endpoints(transport) as eps:
        lsock, endpoint = eps.listen()
        dealer = libzmq_curve_client(ctx, zmq.DEALER, server, client)
        dealer.connect(endpoint)
        conn = accept(lsock)
        mechanism = curve_server(server, address=eps.peer_address(conn))
        peer = CodecPeer(conn, codec(engine.ROUTER, mechanism), auth)
        peer.handshake()
        assert mechanism.user_id == client.public_z85.decode()
        dealer.send_multipart([b"hello", BIG])
        assert peer.receive() == [[b"hello", BIG]]
        peer.send([b"back", BIG])
        assert dealer.recv_multipart() == [b"back", BIG]
        conn.close()
        lsock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_curve_engine_xpub_takes_sealed_subscriptions(ctx: zmq.Context, transport: str) -> None:
    server, client = Keys.new(), Keys.new()
    auth = Authenticator()
    auth.configure_curve(location=CURVE_ALLOW_ANY)
    with endpoints(transport) as eps:
        lsock, endpoint = eps.listen()
        sub = libzmq_curve_client(ctx, zmq.SUB, server, client)
        sub.subscribe(b"room.")
        sub.connect(endpoint)
        peer = CodecPeer(accept(lsock), codec(engine.XPUB, curve_server(server)), auth)
        peer.handshake()
        assert peer.receive() == [[b"\x01room."]]
        peer.send([b"room.1", b"event"], [b"other", b"x"], [b"room.2", b"event"])
        assert sub.recv_multipart() == [b"room.1", b"event"]
        assert sub.recv_multipart() == [b"room.2", b"event"]
        sub.unsubscribe(b"room.")
        assert peer.receive() == [[b"\x00room."]]
        peer.sock.close()
        lsock.close()


# -- PLAIN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_plain_engine_client_to_libzmq_server(ctx: zmq.Context, transport: str) -> None:
    with libzmq_auth(ctx) as auth, endpoints(transport) as eps:
        auth.configure_plain(domain="*", passwords={"alice": "s3cret"})
        rep = ctx.socket(zmq.REP)
        rep.linger = 0
        rep.plain_server = True
        endpoint = bind(rep, eps)
        peer = CodecPeer(eps.connect(endpoint), codec(engine.REQ, PlainClient(b"alice", b"s3cret")))
        peer.handshake()
        peer.send([b"", b"ping"])  # REQ's envelope is the socket layer's job, not the codec's
        frame = rep.recv(copy=False)
        assert frame.bytes == b"ping"
        assert frame.get("User-Id") == "alice"
        rep.send(b"pong")
        assert peer.receive() == [[b"", b"pong"]]
        peer.sock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_plain_libzmq_client_to_engine_server(ctx: zmq.Context, transport: str) -> None:
    auth = Authenticator()
    auth.configure_plain(passwords={"bob": "hunter2"})
    with endpoints(transport) as eps:
        lsock, endpoint = eps.listen()
        push = ctx.socket(zmq.PUSH)
        push.linger = 0
        push.plain_username = b"bob"
        push.plain_password = b"hunter2"
        push.connect(endpoint)
        conn = accept(lsock)
        mechanism = PlainServer(zap=ZapSettings(address=eps.peer_address(conn)))
        peer = CodecPeer(conn, codec(engine.PULL, mechanism), auth)
        peer.handshake()
        assert mechanism.user_id == "bob"
        push.send_multipart([b"a", BIG])
        assert peer.receive() == [[b"a", BIG]]
        conn.close()
        lsock.close()


# -- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_server_key_refused_by_libzmq_server(ctx: zmq.Context, transport: str) -> None:
    server, impostor, client = Keys.new(), Keys.new(), Keys.new()
    with endpoints(transport) as eps:
        router = libzmq_curve_server(ctx, zmq.ROUTER, server)
        monitor = router.get_monitor_socket()
        endpoint = bind(router, eps)
        peer = CodecPeer(
            eps.connect(endpoint), codec(engine.DEALER, curve_client(impostor, client))
        )
        peer.wait_closed()
        seen = monitor_events(monitor, {zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL})
        assert seen[zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL] == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
        assert zmq.EVENT_HANDSHAKE_SUCCEEDED not in seen


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_server_key_refused_by_engine_server(ctx: zmq.Context, transport: str) -> None:
    server, impostor, client = Keys.new(), Keys.new(), Keys.new()
    with endpoints(transport) as eps:
        lsock, endpoint = eps.listen()
        dealer = libzmq_curve_client(ctx, zmq.DEALER, impostor, client)
        monitor = dealer.get_monitor_socket()
        dealer.connect(endpoint)
        peer = CodecPeer(accept(lsock), codec(engine.ROUTER, curve_server(server)), Authenticator())
        with pytest.raises(ProtocolError) as failure:
            peer.handshake()
        assert failure.value.event == engine.EVENT_HANDSHAKE_FAILED_PROTOCOL
        assert failure.value.value == engine.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
        peer.sock.close()
        seen = monitor_events(monitor, {zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL})
        assert zmq.EVENT_HANDSHAKE_SUCCEEDED not in seen
        lsock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_client_key_refused_by_libzmq_server(
    ctx: zmq.Context, keydir: str, transport: str
) -> None:
    server, stranger = Keys.new(), Keys.new()
    create_certificates(keydir, "someone-else")
    with libzmq_auth(ctx) as auth, endpoints(transport) as eps:
        auth.configure_curve(domain="*", location=keydir)
        router = libzmq_curve_server(ctx, zmq.ROUTER, server)
        monitor = router.get_monitor_socket()
        endpoint = bind(router, eps)
        peer = CodecPeer(
            eps.connect(endpoint), codec(engine.DEALER, curve_client(server, stranger))
        )
        with pytest.raises(AuthenticationFailed) as failure:
            peer.handshake()
        assert (failure.value.event, failure.value.value) == (
            engine.EVENT_HANDSHAKE_FAILED_AUTH,
            400,
        )
        seen = monitor_events(monitor, {zmq.EVENT_HANDSHAKE_FAILED_AUTH})
        assert seen[zmq.EVENT_HANDSHAKE_FAILED_AUTH] == 400
        peer.sock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_client_key_refused_by_engine_server(
    ctx: zmq.Context, keydir: str, transport: str
) -> None:
    server, stranger = Keys.new(), Keys.new()
    create_certificates(keydir, "someone-else")
    auth = Authenticator()
    auth.configure_curve(location=keydir)
    with endpoints(transport) as eps:
        lsock, endpoint = eps.listen()
        dealer = libzmq_curve_client(ctx, zmq.DEALER, server, stranger)
        monitor = dealer.get_monitor_socket()
        dealer.connect(endpoint)
        peer = CodecPeer(accept(lsock), codec(engine.ROUTER, curve_server(server)), auth)
        with pytest.raises(AuthenticationFailed) as failure:
            peer.handshake()
        assert failure.value.value == 400
        seen = monitor_events(monitor, {zmq.EVENT_HANDSHAKE_FAILED_AUTH})
        assert seen[zmq.EVENT_HANDSHAKE_FAILED_AUTH] == 400
        peer.sock.close()
        lsock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_zap_denial_by_libzmq_handler(ctx: zmq.Context, transport: str) -> None:
    """PLAIN with a wrong password: libzmq's handler says 400, our client hears ERROR 400."""
    with libzmq_auth(ctx) as auth, endpoints(transport) as eps:
        auth.configure_plain(domain="*", passwords={"alice": "s3cret"})
        pull = ctx.socket(zmq.PULL)
        pull.linger = 0
        pull.plain_server = True
        monitor = pull.get_monitor_socket()
        endpoint = bind(pull, eps)
        peer = CodecPeer(eps.connect(endpoint), codec(engine.PUSH, PlainClient(b"alice", b"guess")))
        with pytest.raises(AuthenticationFailed) as failure:
            peer.handshake()
        assert failure.value.value == 400
        assert (
            monitor_events(monitor, {zmq.EVENT_HANDSHAKE_FAILED_AUTH})[
                zmq.EVENT_HANDSHAKE_FAILED_AUTH
            ]
            == 400
        )
        peer.sock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_zap_denial_by_engine_handler(ctx: zmq.Context, transport: str) -> None:
    """CURVE with a good key from a denied address: our handler says 400; libzmq hears it."""
    server, client = Keys.new(), Keys.new()
    auth = Authenticator()
    auth.configure_curve(location=CURVE_ALLOW_ANY)
    with endpoints(transport) as eps:
        lsock, endpoint = eps.listen()
        push = libzmq_curve_client(ctx, zmq.PUSH, server, client)
        monitor = push.get_monitor_socket()
        push.connect(endpoint)
        conn = accept(lsock)
        address = eps.peer_address(conn) or "ipc-peer"
        auth.deny(address)
        mechanism = curve_server(server, address=address)
        peer = CodecPeer(conn, codec(engine.PULL, mechanism), auth)
        with pytest.raises(AuthenticationFailed) as failure:
            peer.handshake()
        assert failure.value.value == 400
        seen = monitor_events(monitor, {zmq.EVENT_HANDSHAKE_FAILED_AUTH})
        assert seen[zmq.EVENT_HANDSHAKE_FAILED_AUTH] == 400
        conn.close()
        lsock.close()


def test_plain_server_without_handler_refuses(ctx: zmq.Context) -> None:
    """As libzmq: PLAIN with nobody to check the password lets nobody in."""
    with endpoints("tcp") as eps:
        lsock, endpoint = eps.listen()
        push = ctx.socket(zmq.PUSH)
        push.linger = 0
        push.plain_username = b"bob"
        push.plain_password = b"pw"
        push.connect(endpoint)
        peer = CodecPeer(accept(lsock), codec(engine.PULL, PlainServer()), auth=None)
        with pytest.raises(ProtocolError) as failure:
            peer.handshake()
        assert failure.value.event == engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        peer.sock.close()
        lsock.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_plain_wrong_password_refused_by_engine_handler(ctx: zmq.Context, transport: str) -> None:
    """Our ERROR is RFC 24's; libzmq 4.3's PLAIN client only knows its own misspelt ERROR
    (see LIBZMQ_PLAIN_ERROR), so it reports an unexpected command rather than a 400. Either
    way it is refused and stops."""
    auth = Authenticator()
    auth.configure_plain(passwords={"bob": "hunter2"})
    with endpoints(transport) as eps:
        lsock, endpoint = eps.listen()
        push = ctx.socket(zmq.PUSH)
        push.linger = 0
        push.plain_username = b"bob"
        push.plain_password = b"guess"
        monitor = push.get_monitor_socket()
        push.connect(endpoint)
        conn = accept(lsock)
        mechanism = PlainServer(zap=ZapSettings(address=eps.peer_address(conn)))
        peer = CodecPeer(conn, codec(engine.PULL, mechanism), auth)
        with pytest.raises(AuthenticationFailed) as failure:
            peer.handshake()
        assert failure.value.value == 400
        seen = monitor_events(monitor, {zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL})
        assert (
            seen[zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL] == zmq.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND
        )
        conn.close()
        lsock.close()
