"""The relay's count of its usable upstream links, from its monitor's events, when a
handshake keeps failing beside a link that is up. libzmq (and now the engine) reports
DISCONNECTED after each failed handshake too; those close no usable link, and the count
used to fall with each."""

from __future__ import annotations

import asyncio

import pytest

import engine
import engine.asyncio as azmq
from engine.utils.monitor import recv_monitor_message
from relay.forwarder import LINK_EVENTS, LinkCounter

pytestmark = pytest.mark.timeout(60)

#: Failed handshakes (each with its DISCONNECTED) watched beside the live link.
FAILURES = 4


def test_failed_handshakes_do_not_take_a_live_link_down() -> None:
    asyncio.run(_failed_beside_live())


async def _failed_beside_live() -> None:
    ctx = azmq.Context()
    try:
        servers = []
        for public, secret in (engine.curve_keypair(), engine.curve_keypair()):
            server = ctx.socket(engine.XPUB)
            server.curve_server = True
            server.curve_publickey, server.curve_secretkey = public, secret
            server.bind("tcp://127.0.0.1:0")
            servers.append((server, public))
        # One socket, one server key: the first server's handshake succeeds, the second's
        # fails every RECONNECT_IVL (it is another server, with another key).
        upstream = ctx.socket(engine.XSUB)
        upstream.curve_serverkey = servers[0][1]
        upstream.curve_publickey, upstream.curve_secretkey = engine.curve_keypair()
        upstream.reconnect_ivl = 20
        monitor = upstream.get_monitor_socket(LINK_EVENTS)
        counter = LinkCounter(monitor, "test")
        for server, _ in servers:
            upstream.connect(server.getsockopt(engine.LAST_ENDPOINT).decode())
        disconnects = 0
        while disconnects < FAILURES:
            message = await asyncio.wait_for(recv_monitor_message(monitor), 10)
            counter.handle(message)  # the relay's own counting, event by event
            if counter.up and message["event"] == engine.EVENT_DISCONNECTED:
                disconnects += 1  # a failure's, once the live link is up: it stays up
            if disconnects:
                assert counter.up == 1, f"after {disconnects} failed handshakes"
    finally:
        ctx.destroy(linger=0)
