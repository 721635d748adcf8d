"""A sync socket the application drops without closing is closed when Python collects it, as
pyzmq's is: its connections end and its peers see it go.

The engine's socket core held its face strongly (the wake-up it calls), and the I/O loop held
the core while it had connections, so a dropped socket stayed alive, connected and subscribed
for ever: the ZeroMQ Guide's espresso example, whose subscriber thread returns without a
close, never showed the proxy's unsubscriptions, and the publisher's messages kept flowing to
nobody. Unsubscriptions of a departed subscriber are reported in byte order, as libzmq walks
its trie (the engine's order followed a set's).
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS, all_queued

pytestmark = pytest.mark.timeout(60)


def _subscribed_sub(lib: Any, ctx: Any, endpoint: str, topics: list[bytes]) -> Any:
    sub = ctx.socket(lib.SUB)
    sub.connect(endpoint)
    for topic in topics:
        sub.setsockopt(lib.SUBSCRIBE, topic)
    return sub


@LIBS
@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_dropped_subscriber_unsubscribes(lib: Any, transport: str) -> None:
    ctx = lib.Context()
    try:
        xpub = ctx.socket(lib.XPUB)
        xpub.bind("tcp://127.0.0.1:0" if transport == "tcp" else "inproc://dropped-sub")
        endpoint = xpub.getsockopt(lib.LAST_ENDPOINT).decode()
        sub = _subscribed_sub(lib, ctx, endpoint, [b"B", b"A"])
        assert xpub.poll(WAIT_MS)
        assert sorted(all_queued(xpub)) == [[b"\x01A"], [b"\x01B"]]
        del sub  # dropped, never closed
        gc.collect()
        assert xpub.poll(WAIT_MS), "the dropped subscriber was not heard to go"
        assert all_queued(xpub) == [[b"\x00A"], [b"\x00B"]]
    finally:
        ctx.destroy(0)


@LIBS
def test_dropped_dealer_disconnects(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.bind("tcp://127.0.0.1:0")
        endpoint = router.getsockopt(lib.LAST_ENDPOINT).decode()
        monitor = router.get_monitor_socket(lib.EVENT_DISCONNECTED)
        dealer = ctx.socket(lib.DEALER)
        dealer.setsockopt(lib.LINGER, 0)
        dealer.connect(endpoint)
        dealer.send(b"here")
        assert router.poll(WAIT_MS) and router.recv_multipart()[1] == b"here"
        del dealer
        gc.collect()
        assert monitor.poll(WAIT_MS), "the dropped dealer's connection stayed open"
        event = monitor.recv_multipart()
        assert int.from_bytes(event[0][:2], "little") == lib.EVENT_DISCONNECTED
        router.disable_monitor()
        monitor.close(0)
    finally:
        ctx.destroy(0)
