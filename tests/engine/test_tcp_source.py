"""A tcp connect from a chosen source address, "tcp://SOURCE;TARGET", compared with libzmq.

The engine read the form and dropped the source: its connections came from wherever the
kernel chose. Loopback is all of 127.0.0.0/8 on Linux, so 127.0.0.2 and friends are real
sources here; a plain listening socket says where each connection came from.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import engine
import engine.asyncio as engine_asyncio
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    yield server
    server.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.4", 0))
        return int(probe.getsockname()[1])


def _source_of(listener: socket.socket) -> tuple[str, int]:
    conn, address = listener.accept()
    conn.close()
    return address[0], address[1]


@LIBS
def test_a_connect_comes_from_its_source_address(lib: Any, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    fixed = _free_port()
    ctx = lib.Context()
    try:
        for source, expected in (("127.0.0.2:0", "127.0.0.2"), ("127.0.0.3:*", "127.0.0.3")):
            sock = ctx.socket(lib.DEALER)
            sock.connect(f"tcp://{source};127.0.0.1:{port}")
            assert _source_of(listener)[0] == expected
            sock.close(linger=0)
        sock = ctx.socket(lib.DEALER)
        endpoint = f"tcp://127.0.0.4:{fixed};127.0.0.1:{port}"
        sock.connect(endpoint)
        assert _source_of(listener) == ("127.0.0.4", fixed)
        sock.disconnect(endpoint)  # the endpoint as given names the connection
        sock.close(linger=0)
    finally:
        ctx.destroy(linger=0)


def test_an_asyncio_connect_comes_from_its_source_address(listener: socket.socket) -> None:
    port = listener.getsockname()[1]

    async def run() -> tuple[str, int]:
        ctx = engine_asyncio.Context()
        try:
            sock = ctx.socket(engine.DEALER)
            sock.connect(f"tcp://127.0.0.5:0;127.0.0.1:{port}")
            return await asyncio.to_thread(_source_of, listener)
        finally:
            ctx.destroy(linger=0)

    assert asyncio.run(run())[0] == "127.0.0.5"


@LIBS
def test_a_source_is_an_address_not_a_wildcard_and_a_bind_checks_then_ignores_it(
    lib: Any,
) -> None:
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.ROUTER)
        with pytest.raises(lib.ZMQError) as wildcard:
            sock.connect("tcp://*:0;127.0.0.1:5555")
        assert wildcard.value.errno == errno.EINVAL
        sock.bind("tcp://127.0.0.2:0;127.0.0.1:0")  # libzmq binds the target alone
        assert sock.getsockopt(lib.LAST_ENDPOINT).startswith(b"tcp://127.0.0.1:")
        with pytest.raises(lib.ZMQError):
            sock.bind("tcp://garbage;127.0.0.1:0")
    finally:
        ctx.destroy(linger=0)


def test_a_source_without_a_port_is_refused_at_once_unlike_libzmq() -> None:
    """libzmq takes "tcp://127.0.0.2;TARGET" and fails each attempt out of sight (its source
    needs a port); the engine says so at connect()."""
    ctx = engine.Context()
    try:
        with pytest.raises(engine.ZMQError, match="source address is HOST:PORT"):
            ctx.socket(engine.DEALER).connect("tcp://127.0.0.2;127.0.0.1:5555")
    finally:
        ctx.destroy(linger=0)
