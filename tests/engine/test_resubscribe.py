"""A SUB's subscriptions after its publisher restarts, against both libraries.

libzmq queues a SUB's subscriptions again when its connection is lost (the pipe's hiccup,
taken in at the application's next call), so they reach the restarted publisher at the new
handshake even while the application is busy elsewhere. The engine queued them only at the
new handshake, and only once the application next called into the socket: a publisher
that came back while the subscriber was not calling in was left without them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS


def _wait_for_event(monitor: Any, event: int) -> None:
    while monitor.poll(WAIT_MS):
        if int.from_bytes(monitor.recv_multipart()[0][:2], "little") == event:
            return
    raise AssertionError(f"no event {event}")


@LIBS
@pytest.mark.parametrize("kind", ["SUB", "XSUB"])
def test_a_restarted_publisher_gets_the_subscriptions_without_the_subscriber_calling_in(
    lib: Any, kind: str
) -> None:
    ctx = lib.Context()
    try:
        publisher = ctx.socket(lib.XPUB)
        publisher.bind("tcp://127.0.0.1:0")
        endpoint = publisher.getsockopt(lib.LAST_ENDPOINT).decode()
        subscriber = ctx.socket(getattr(lib, kind))
        subscriber.setsockopt(lib.RECONNECT_IVL, 10)
        monitor = subscriber.get_monitor_socket()
        subscriber.connect(endpoint)
        if kind == "SUB":
            subscriber.setsockopt(lib.SUBSCRIBE, b"news")
        else:
            subscriber.send(b"\x01news")
        assert publisher.poll(WAIT_MS) and publisher.recv_multipart() == [b"\x01news"]
        publisher.close(linger=0)
        # The loss is seen and a reconnection is under way; the application calls in once.
        _wait_for_event(monitor, lib.EVENT_CONNECT_RETRIED)
        subscriber.getsockopt(lib.EVENTS)
        restarted = ctx.socket(lib.XPUB)
        restarted.bind(endpoint)
        # From here on only the publisher is called.
        assert restarted.poll(WAIT_MS) and restarted.recv_multipart() == [b"\x01news"]
        restarted.send(b"news today")
        assert subscriber.poll(WAIT_MS) and subscriber.recv() == b"news today"
    finally:
        ctx.destroy(linger=0)
