"""`Socket.peer_address(routing_id)`: a ROUTER tells the address of the peer behind a routing id
(an engine extension, as libzmq's "Peer-Address" message property; the game's admission budgets
logins per address with it), on both faces and over tcp and ipc."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import engine
import engine.asyncio as azmq

TIMEOUT_MS = 10_000


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_sync_router_names_its_peers_address(transport: str, tmp_path: Path) -> None:
    ctx = engine.Context()
    try:
        router, dealer = ctx.socket(engine.ROUTER), ctx.socket(engine.DEALER)
        router.rcvtimeo = TIMEOUT_MS
        where = "tcp://127.0.0.1:0" if transport == "tcp" else f"ipc://{tmp_path}/peer.sock"
        dealer.connect(router.bind(where))
        dealer.send(b"hello")
        peer, body = router.recv_multipart()
        assert body == b"hello"
        if transport == "tcp":
            assert router.peer_address(peer) == "127.0.0.1"
        else:  # as ZAP names an ipc peer: its process's credentials
            assert (
                router.peer_address(peer) == f"localhost:{os.getuid()}:{os.getgid()}:{os.getpid()}"
            )
        assert router.peer_address(b"\0nobody") == ""
        with pytest.raises(engine.ZMQError) as refused:
            dealer.peer_address(peer)
        assert refused.value.errno == engine.ENOTSUP
    finally:
        ctx.destroy(linger=0)


def test_asyncio_router_names_its_peers_address() -> None:
    async def scenario() -> None:
        ctx = azmq.Context()
        try:
            router, dealer = ctx.socket(engine.ROUTER), ctx.socket(engine.DEALER)
            dealer.connect(router.bind("tcp://127.0.0.1:0"))
            await dealer.send(b"hello")
            peer, _ = await router.recv_multipart()
            assert router.peer_address(peer) == "127.0.0.1"
        finally:
            ctx.destroy(linger=0)

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT_MS / 1000))
