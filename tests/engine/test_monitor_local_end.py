"""DISCONNECTED is for a connection that failed or that the peer ended, as libzmq reports it.

libzmq's monitor says DISCONNECTED when a connection breaks or its peer closes it, never for
one its own socket ended (disconnect, unbind, close): the other side hears it. The engine
reported both sides. Each test runs the same code on both libraries; libzmq's socket acts on
its connections' news when it is next called, so the waits below ask the sockets for EVENTS.
"""

from __future__ import annotations

from typing import Any

import pytest
from enginekit import monitor_events

from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

WAIT_S = 10.0
#: How long a monitor is watched for an event it must not get.
QUIET_S = 0.3


def _pair(lib: Any, ctx: Any, name: str) -> tuple[Any, Any, Any, Any, str]:
    """A ROUTER bound on tcp and a DEALER connected to it, a message through, each with its
    monitor: (router, its monitor, dealer, its monitor, endpoint)."""
    router = ctx.socket(lib.ROUTER)
    router.linger = 0
    router_events = router.get_monitor_socket(addr=f"inproc://{name}-router")
    router.bind("tcp://127.0.0.1:0")
    endpoint = router.getsockopt(lib.LAST_ENDPOINT).decode()
    dealer = ctx.socket(lib.DEALER)
    dealer.linger = 0
    dealer.setsockopt(lib.RECONNECT_IVL, 5000)
    dealer_events = dealer.get_monitor_socket(addr=f"inproc://{name}-dealer")
    dealer.connect(endpoint)
    dealer.send(b"hello")
    assert router.poll(int(WAIT_S * 1000))
    router.recv_multipart()
    assert (
        monitor_events(lib, router_events, "HANDSHAKE_SUCCEEDED", WAIT_S)[-1]
        == "HANDSHAKE_SUCCEEDED"
    )
    assert (
        monitor_events(lib, dealer_events, "HANDSHAKE_SUCCEEDED", WAIT_S)[-1]
        == "HANDSHAKE_SUCCEEDED"
    )
    return router, router_events, dealer, dealer_events, endpoint


@LIBS
def test_disconnect_is_heard_by_the_peer_only(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router, router_events, dealer, dealer_events, endpoint = _pair(lib, ctx, "disconnect")
        dealer.disconnect(endpoint)
        assert monitor_events(lib, router_events, "DISCONNECTED", WAIT_S, router, dealer) == [
            "DISCONNECTED"
        ]
        assert monitor_events(lib, dealer_events, None, QUIET_S, dealer) == []
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_unbind_is_heard_by_the_peer_only(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router, router_events, dealer, dealer_events, endpoint = _pair(lib, ctx, "unbind")
        router.unbind(endpoint)
        assert monitor_events(lib, dealer_events, "DISCONNECTED", WAIT_S, dealer, router) == [
            "DISCONNECTED"
        ]
        assert monitor_events(lib, router_events, None, QUIET_S, router) == ["CLOSED"]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_close_is_heard_by_the_peer_only(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router, router_events, dealer, dealer_events, _ = _pair(lib, ctx, "close")
        dealer.close(linger=0)
        assert monitor_events(lib, router_events, "DISCONNECTED", WAIT_S, router) == [
            "DISCONNECTED"
        ]
        assert monitor_events(lib, dealer_events, "MONITOR_STOPPED", WAIT_S) == ["MONITOR_STOPPED"]
    finally:
        ctx.destroy(linger=0)
