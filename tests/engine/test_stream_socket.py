"""STREAM sockets: plain tcp/ipc peers, run the same way on the engine and on libzmq.

A STREAM socket was missing (zmq.STREAM an AttributeError). Each scenario below runs its
lines against both libraries with ordinary Python sockets as the peers, then the engine's
STREAM against libzmq's own, and the asyncio face alone.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import zmq as pyzmq
from enginekit import async_test, same_option_verdicts_as_libzmq

import engine
import engine.asyncio
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 10_000


def _port(sock: Any, lib: Any) -> int:
    return int(sock.getsockopt(lib.LAST_ENDPOINT).decode().rsplit(":", 1)[1])


def _plain_client(port: int) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=WAIT_MS / 1000)
    return client


def test_stream_notify_is_taken_where_libzmq_takes_it_and_never_read() -> None:
    types = ("STREAM", "ROUTER", "DEALER", "PUB", "SUB")
    same_option_verdicts_as_libzmq("STREAM_NOTIFY", types, (0, 1, 2, -1))
    ctx = engine.Context()
    try:
        with pytest.raises(engine.ZMQError) as refused:
            ctx.socket(engine.STREAM).bind("inproc://raw")  # libzmq takes it, and it is inert
        assert refused.value.errno == engine.EPROTONOSUPPORT
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_stream_server_talks_to_plain_tcp_clients(lib: Any) -> None:
    ctx = lib.Context()
    try:
        server = ctx.socket(lib.STREAM)
        server.setsockopt(lib.RCVTIMEO, WAIT_MS)
        server.bind("tcp://127.0.0.1:0")
        port = _port(server, lib)

        client = _plain_client(port)
        rid, empty = server.recv_multipart()  # connected
        assert (len(rid), empty) == (5, b"")
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert server.recv_multipart() == [rid, b"GET / HTTP/1.0\r\n\r\n"]
        server.send_multipart([rid, b"HTTP/1.0 200 OK\r\n\r\nhello"])
        with pytest.raises(lib.ZMQError) as unknown:
            server.send_multipart([b"\x00nope", b"lost"])
        assert unknown.value.errno == lib.EHOSTUNREACH
        server.send_multipart([rid, b""])  # close it, after what went before
        server.poll(100)  # libzmq closes when the socket next runs its commands
        received = b""
        while chunk := client.recv(4096):
            received += chunk
        assert received == b"HTTP/1.0 200 OK\r\n\r\nhello"
        client.close()

        second = _plain_client(port)
        other, _ = server.recv_multipart()
        assert other != rid
        second.close()  # the peer goes: the socket hears of it
        assert server.recv_multipart() == [other, b""]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_stream_client_names_its_connection_and_may_not_be_told(lib: Any) -> None:
    ctx = lib.Context()
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        client = ctx.socket(lib.STREAM)
        client.setsockopt(lib.RCVTIMEO, WAIT_MS)
        client.setsockopt(lib.CONNECT_ROUTING_ID, b"web")
        client.connect(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        conn, _ = listener.accept()
        assert client.recv_multipart() == [b"web", b""]
        client.send_multipart([b"web", b"ping"])
        assert conn.recv(100) == b"ping"
        conn.sendall(b"pong")
        assert client.recv_multipart() == [b"web", b"pong"]
        conn.close()

        quiet = ctx.socket(lib.STREAM)
        quiet.setsockopt(lib.STREAM_NOTIFY, 0)
        quiet.setsockopt(lib.RCVTIMEO, WAIT_MS)
        quiet.bind("tcp://127.0.0.1:0")
        talker = _plain_client(_port(quiet, lib))
        talker.sendall(b"first")
        assert quiet.recv_multipart()[1] == b"first"  # no connection message before it
        talker.close()
    finally:
        listener.close()
        ctx.destroy(linger=0)


def test_the_engines_stream_and_libzmqs_talk_raw_bytes() -> None:
    ours, theirs = engine.Context(), pyzmq.Context()
    try:
        their_server = theirs.socket(pyzmq.STREAM)
        their_server.setsockopt(pyzmq.RCVTIMEO, WAIT_MS)
        their_server.bind("tcp://127.0.0.1:0")
        our_client = ours.socket(engine.STREAM)
        our_client.setsockopt(engine.RCVTIMEO, WAIT_MS)
        our_client.connect(f"tcp://127.0.0.1:{_port(their_server, pyzmq)}")
        their_id, _ = their_server.recv_multipart()
        our_id, _ = our_client.recv_multipart()
        our_client.send_multipart([our_id, b"from the engine"])
        assert their_server.recv_multipart() == [their_id, b"from the engine"]
        their_server.send_multipart([their_id, b"from libzmq"])
        assert our_client.recv_multipart() == [our_id, b"from libzmq"]
    finally:
        ours.destroy(linger=0)
        theirs.destroy(linger=0)


@async_test()
async def test_a_stream_socket_on_the_asyncio_face() -> None:
    ctx = engine.asyncio.Context()
    try:
        server = ctx.socket(engine.STREAM)
        port = int(server.bind("tcp://127.0.0.1:0").rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        rid, empty = await asyncio.wait_for(server.recv_multipart(), 10)
        assert empty == b""
        writer.write(b"echo me")
        await writer.drain()
        assert await asyncio.wait_for(server.recv_multipart(), 10) == [rid, b"echo me"]
        await server.send_multipart([rid, b"echo me"])
        assert await asyncio.wait_for(reader.readexactly(7), 10) == b"echo me"
        await server.send_multipart([rid, b""])
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        writer.close()
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_routing_id_reads_the_id_a_stream_gave_last(lib: Any) -> None:
    """libzmq's manual: connect a STREAM, then read ROUTING_ID for the new connection's id
    (libzmq keeps each id it makes there). The engine answered the socket's own, empty."""
    ctx = lib.Context()
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        client = ctx.socket(lib.STREAM)
        client.setsockopt(lib.RCVTIMEO, WAIT_MS)
        client.connect(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        conn, _ = listener.accept()
        rid, _ = client.recv_multipart()  # connected
        assert client.getsockopt(lib.ROUTING_ID) == rid
        conn.close()

        server = ctx.socket(lib.STREAM)
        server.setsockopt(lib.RCVTIMEO, WAIT_MS)
        server.bind("tcp://127.0.0.1:0")
        first = _plain_client(_port(server, lib))
        first_id, _ = server.recv_multipart()
        second = _plain_client(_port(server, lib))
        second_id, _ = server.recv_multipart()
        assert first_id != second_id == server.getsockopt(lib.ROUTING_ID)
        first.close()
        second.close()
    finally:
        listener.close()
        ctx.destroy(linger=0)
