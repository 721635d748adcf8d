"""A ROUTER with ROUTER_RAW (libzmq's older STREAM, still in libzmq 4.3) speaks no ZMTP: each
connection is plain bytes, named by a routing id, with an empty message for its arrival and
its departure.

The engine took the option and ignored it: the ROUTER greeted a plain peer in ZMTP and never
handed it a byte.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS

pytestmark = pytest.mark.timeout(60)


def _raw_router(lib: Any, ctx: Any) -> Any:
    router = ctx.socket(lib.ROUTER)
    router.setsockopt(lib.LINGER, 0)
    router.setsockopt(lib.ROUTER_RAW, 1)
    return router


def _next(router: Any) -> list[bytes]:
    assert router.poll(WAIT_MS), "nothing came"
    return router.recv_multipart()


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@LIBS
def test_bound_raw_router_carries_plain_bytes(lib: Any) -> None:
    ctx = lib.Context()
    router = _raw_router(lib, ctx)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port), timeout=WAIT_MS / 1000)
    try:
        rid, arrived = _next(router)
        assert arrived == b""  # the connection's arrival
        client.sendall(b"hello, raw")
        data = b""
        while len(data) < len(b"hello, raw"):
            got_rid, chunk = _next(router)
            assert got_rid == rid
            data += chunk
        assert data == b"hello, raw"
        router.send_multipart([rid, b"plain reply"])
        assert _read_exactly(client, len(b"plain reply")) == b"plain reply"
        client.close()
        assert _next(router) == [rid, b""]  # its departure
        assert router.getsockopt(lib.TYPE) == lib.ROUTER
    finally:
        client.close()
        ctx.destroy(0)


@LIBS
def test_connecting_raw_router_sends_no_greeting(lib: Any) -> None:
    ctx = lib.Context()
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        router = _raw_router(lib, ctx)
        router.connect(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        listener.settimeout(WAIT_MS / 1000)
        server, _ = listener.accept()
        server.settimeout(WAIT_MS / 1000)
        with server:
            rid, arrived = _next(router)
            assert arrived == b""
            server.sendall(b"from the server")
            assert _next(router) == [rid, b"from the server"]
            router.send_multipart([rid, b"answer"])
            # The first bytes on the wire are the answer: no ZMTP greeting came before it.
            assert _read_exactly(server, len(b"answer")) == b"answer"
            server.close()
            assert _next(router) == [rid, b""]
    finally:
        listener.close()
        ctx.destroy(0)
