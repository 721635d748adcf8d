"""A received frame answers its connection's metadata, as libzmq's `zmq_msg_gets` does through
pyzmq's `Frame.get(name)`: Socket-Type and Identity from the peer's READY, Peer-Address, and
the User-Id and metadata a ZAP handler's reply gave. Each case runs on both libraries (the
engine's frames answered MORE only, EINVAL for every name).
"""

from __future__ import annotations

import asyncio
import errno
import os
import struct
from typing import Any

import pytest
import zmq as pyzmq
import zmq.asyncio as pyzmq_asyncio
from enginekit import zap_handler

import engine
import engine.asyncio
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 10_000


def _endpoint(transport: str, tmp_path: Any) -> str:
    if transport == "ipc":
        return f"ipc://{tmp_path}/props.ipc"
    if transport == "inproc":
        return f"inproc://props-{id(tmp_path)}"
    return "tcp://127.0.0.1:0"


def _bound(sock: Any, lib: Any, endpoint: str) -> str:
    sock.bind(endpoint)
    return sock.getsockopt(lib.LAST_ENDPOINT).decode()


def _property(frame: Any, lib: Any, name: str) -> str | int:
    """The property's text, or the errno its absence raised."""
    try:
        return frame.get(name)
    except lib.ZMQError as exc:
        return exc.errno


@LIBS
@pytest.mark.parametrize("peer_lib", [engine, pyzmq], ids=["engine-peer", "pyzmq-peer"])
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_a_frame_answers_its_peers_socket_type_identity_and_address(
    lib: Any, peer_lib: Any, transport: str, tmp_path: Any
) -> None:
    ctx, peer_ctx = lib.Context(), peer_lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.setsockopt(lib.RCVTIMEO, WAIT_MS)
        endpoint = _bound(router, lib, _endpoint(transport, tmp_path))
        dealer = peer_ctx.socket(peer_lib.DEALER)
        dealer.setsockopt(peer_lib.ROUTING_ID, b"bee")
        dealer.connect(endpoint)
        dealer.send_multipart([b"one", b"two"])
        frames = router.recv_multipart(copy=False)
        assert [f.bytes for f in frames] == [b"bee", b"one", b"two"]
        address = (
            "127.0.0.1"
            if transport == "tcp"
            else f"localhost:{os.getuid()}:{os.getgid()}:{os.getpid()}"
        )
        for frame in frames:
            assert _property(frame, lib, "Socket-Type") == "DEALER"
            assert _property(frame, lib, "Identity") == "bee"
            assert _property(frame, lib, "Peer-Address") == address
            assert _property(frame, lib, "User-Id") == errno.EINVAL  # no ZAP handler
            assert _property(frame, lib, "No-Such-Property") == errno.EINVAL
        # Frame by frame: the rest of a message keeps its connection, whichever way the
        # frames before it were taken.
        dealer.send_multipart([b"three", b"four"])
        assert router.recv() == b"bee"
        third = router.recv(copy=False)
        assert (third.bytes, _property(third, lib, "Identity")) == (b"three", "bee")
        fourth = router.recv_multipart(copy=False)
        assert [(f.bytes, _property(f, lib, "Socket-Type")) for f in fourth] == [
            (b"four", "DEALER")
        ]
    finally:
        ctx.destroy(linger=0)
        peer_ctx.destroy(linger=0)


@LIBS
def test_an_inproc_frame_has_no_properties(lib: Any, tmp_path: Any) -> None:
    ctx = lib.Context()
    try:
        pull = ctx.socket(lib.PULL)
        pull.setsockopt(lib.RCVTIMEO, WAIT_MS)
        endpoint = _bound(pull, lib, _endpoint("inproc", tmp_path))
        push = ctx.socket(lib.PUSH)
        push.connect(endpoint)
        push.send(b"local")
        frame = pull.recv(copy=False)
        assert (frame.bytes, frame.get(lib.MORE), frame.get(lib.SHARED)) == (b"local", 0, 0)
        for name in ("Socket-Type", "Identity", "Peer-Address"):
            assert _property(frame, lib, name) == errno.EINVAL
    finally:
        ctx.destroy(linger=0)


def _zap_properties(properties: dict[str, bytes]) -> bytes:
    """ZAP's metadata frame (RFC 27): each name with a byte of length, its value with four."""
    out = b""
    for name, value in properties.items():
        out += bytes([len(name)]) + name.encode() + struct.pack(">I", len(value)) + value
    return out


def _admit_alice(request: list[bytes]) -> list[bytes]:
    """Admits "alice" with her password as User-Id "alice-42" and a Role; refuses others."""
    _version, _request_id, _domain, _address, _identity, mechanism, *creds = request
    if mechanism == b"PLAIN" and creds == [b"alice", b"secret"]:
        return [b"200", b"OK", b"alice-42", _zap_properties({"Role": b"admin"})]
    return [b"400", b"No", b"", b""]


@LIBS
@pytest.mark.parametrize("client_lib", [engine, pyzmq], ids=["engine-client", "pyzmq-client"])
def test_a_frame_answers_the_user_id_and_metadata_its_zap_handler_gave(
    lib: Any, client_lib: Any
) -> None:
    ctx, client_ctx = lib.Context(), client_lib.Context()
    try:
        with zap_handler(lib, ctx, _admit_alice):
            server = ctx.socket(lib.PULL)
            server.setsockopt(lib.RCVTIMEO, WAIT_MS)
            server.setsockopt(lib.PLAIN_SERVER, 1)
            endpoint = _bound(server, lib, "tcp://127.0.0.1:0")
            client = client_ctx.socket(client_lib.PUSH)
            client.setsockopt(client_lib.PLAIN_USERNAME, b"alice")
            client.setsockopt(client_lib.PLAIN_PASSWORD, b"secret")
            client.connect(endpoint)
            client.send(b"signed in")
            frame = server.recv(copy=False)
            assert frame.bytes == b"signed in"
            assert _property(frame, lib, "User-Id") == "alice-42"
            assert _property(frame, lib, "Role") == "admin"
            assert _property(frame, lib, "Socket-Type") == "PUSH"
            # Indexing by name is get(), as pyzmq's asyncio-ironhouse example reads it (the
            # engine's Frame had no indexing).
            assert frame["User-Id"] == "alice-42"
    finally:
        ctx.destroy(linger=0)
        client_ctx.destroy(linger=0)


def _loopback_router(ctx: Any) -> tuple[Any, str]:
    router = ctx.socket(pyzmq.ROUTER)
    router.bind("tcp://127.0.0.1:0")
    return router, router.getsockopt(pyzmq.LAST_ENDPOINT).decode()


def _named_dealer(ctx: Any, name: bytes, endpoint: str) -> Any:
    dealer = ctx.socket(pyzmq.DEALER)
    dealer.setsockopt(pyzmq.ROUTING_ID, name)
    dealer.connect(endpoint)
    return dealer


@pytest.mark.parametrize("lib", [engine.asyncio, pyzmq_asyncio], ids=["engine", "pyzmq"])
def test_asyncio_frames_received_together_each_keep_their_own_peer(lib: Any) -> None:
    """Receives waiting side by side settle later than the take: each message's frames still
    answer the connection it came on."""

    async def run() -> None:
        ctx = lib.Context()
        try:
            router, endpoint = _loopback_router(ctx)
            waiting = [asyncio.ensure_future(router.recv_multipart(copy=False)) for _ in range(8)]
            await asyncio.sleep(0)
            dealers = [_named_dealer(ctx, name, endpoint) for name in (b"red", b"blue")]
            for _ in range(4):
                for dealer in dealers:
                    await dealer.send(dealer.getsockopt(pyzmq.ROUTING_ID))
            messages = await asyncio.wait_for(asyncio.gather(*waiting), 10)
            assert sorted(m[1].bytes for m in messages) == [b"blue"] * 4 + [b"red"] * 4
            for routing_id, payload in messages:
                assert routing_id.bytes == payload.bytes
                assert (
                    routing_id.get("Identity") == payload.get("Identity") == payload.bytes.decode()
                )
        finally:
            ctx.destroy(linger=0)

    asyncio.run(run())


@pytest.mark.parametrize("lib", [engine.asyncio, pyzmq_asyncio], ids=["engine", "pyzmq"])
def test_asyncio_the_rest_of_a_message_awaited_as_bytes_keeps_its_peer(lib: Any) -> None:
    """A recv() that waits (settling later) takes the first frame as bytes; the rest, taken
    as Frames, still answer the connection the message came on."""

    async def run() -> None:
        ctx = lib.Context()
        try:
            router, endpoint = _loopback_router(ctx)
            first = asyncio.ensure_future(router.recv())
            await asyncio.sleep(0)
            dealer = _named_dealer(ctx, b"green", endpoint)
            await dealer.send_multipart([b"one", b"two"])
            assert await asyncio.wait_for(first, 10) == b"green"
            rest = [await router.recv(copy=False), await router.recv(copy=False)]
            assert [frame.bytes for frame in rest] == [b"one", b"two"]
            for frame in rest:
                assert frame.get("Identity") == "green"
                assert frame.get("Socket-Type") == "DEALER"
                assert frame.get("Peer-Address") == "127.0.0.1"
        finally:
            ctx.destroy(linger=0)

    asyncio.run(run())


@pytest.mark.parametrize("face", ["sync", "asyncio"])
def test_thread_safe_draft_sockets_frames_answer_their_connection(face: str) -> None:
    """SERVER, CLIENT and DISH take their messages under a lock shared with other threads;
    a Frame they hand out still knows its connection (libzmq gives every socket type's
    messages their metadata; pyzmq's builds lack the draft types, so the engine alone)."""

    async def exchange(ctx: Any) -> list[Any]:
        server, client = ctx.socket(engine.SERVER), ctx.socket(engine.CLIENT)
        radio, dish = ctx.socket(engine.RADIO), ctx.socket(engine.DISH)
        server.bind("tcp://127.0.0.1:0")
        client.connect(server.getsockopt(engine.LAST_ENDPOINT).decode())
        dish.bind("tcp://127.0.0.1:0")
        dish.join("news")
        radio.connect(dish.getsockopt(engine.LAST_ENDPOINT).decode())
        got = []
        for send, recv, msg in (
            (client.send, server.recv, b"hello"),
            (None, client.recv, b"back"),
        ):
            if send is None:
                frame = got[0]
                result = server.send(msg, routing_id=frame.routing_id)
            else:
                result = send(msg)
            if face == "asyncio":
                await result
                got.append(await asyncio.wait_for(recv(copy=False), 10))
            else:
                got.append(recv(copy=False))
        # A RADIO's sends before the DISH's join reached it are dropped: send until one lands.
        while not (dish.poll(50) if face == "sync" else await dish.poll(50)):
            result = radio.send(b"flash", group="news")
            if face == "asyncio":
                await result
        got.append(dish.recv(copy=False) if face == "sync" else await dish.recv(copy=False))
        return got

    def check(got: list[Any]) -> None:
        at_server, at_client, at_dish = got
        assert (at_server.bytes, at_client.bytes, at_dish.bytes) == (b"hello", b"back", b"flash")
        assert at_server.routing_id and at_dish.group == "news"
        for frame, sender in ((at_server, "CLIENT"), (at_client, "SERVER"), (at_dish, "RADIO")):
            assert frame.get("Socket-Type") == sender
            assert frame.get("Peer-Address") == "127.0.0.1"

    if face == "sync":
        ctx = engine.Context()
        try:
            check(asyncio.run(exchange(ctx)))  # (its sync calls never wait on the loop)
        finally:
            ctx.destroy(linger=0)
        return

    async def run() -> None:
        ctx = engine.asyncio.Context()
        try:
            check(await exchange(ctx))
        finally:
            ctx.destroy(linger=0)

    asyncio.run(run())


@pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
def test_a_frame_has_nothing_to_set(lib: Any) -> None:
    """zmq_msg_set has no settable property in libzmq 4.3: pyzmq's Frame.set is EINVAL (the
    engine's Frame had no set at all)."""
    with pytest.raises(lib.ZMQError) as refused:
        lib.Frame(b"x").set(lib.MORE, 1)
    assert refused.value.errno == errno.EINVAL
