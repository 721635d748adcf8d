"""The waits between a connecter's attempts, as libzmq 4.3 reckons them, compared with pyzmq.

Without RECONNECT_IVL_MAX each wait is RECONNECT_IVL plus a random part of it. With it,
libzmq waits RECONNECT_IVL and then twice the wait before, up to the maximum, exactly, and a
lost connection starts the series again: the engine added the random part there too, began
at RECONNECT_IVL even when the maximum is below it, and waited RECONNECT_IVL twice after a
lost connection before it doubled.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from libkit import LIBS

pytestmark = pytest.mark.timeout(60)


def _next_event(lib: Any, monitor: Any) -> tuple[int, int]:
    event = importlib.import_module(f"{lib.__name__}.utils.monitor").recv_monitor_message(monitor)
    return int(event["event"]), int(event["value"])


def _retry_waits(lib: Any, ivl: int, ivl_max: int, count: int) -> list[int]:
    """The CONNECT_RETRIED values of a connecter that nobody answers. Port 1: a closed port
    from the ephemeral range could, tried every 20 ms, end in a tcp self-connect."""
    ctx = lib.Context()
    try:
        dealer = ctx.socket(lib.DEALER)
        dealer.reconnect_ivl, dealer.reconnect_ivl_max = ivl, ivl_max
        monitor = dealer.get_monitor_socket(lib.EVENT_CONNECT_RETRIED)
        monitor.rcvtimeo = 10_000
        dealer.connect("tcp://127.0.0.1:1")
        return [_next_event(lib, monitor)[1] for _ in range(count)]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_without_a_maximum_each_wait_carries_a_random_part_of_reconnect_ivl(lib: Any) -> None:
    """So that peers cut off together do not all return in step."""
    waits = _retry_waits(lib, 20, 0, 12)
    assert all(20 <= wait < 40 for wait in waits), waits
    assert len(set(waits)) > 1, waits  # twelve equal draws of twenty: one chance in 20**11


@LIBS
def test_with_a_maximum_the_waits_double_exactly_up_to_it(lib: Any) -> None:
    assert _retry_waits(lib, 20, 80, 5) == [20, 40, 80, 80, 80]
    assert _retry_waits(lib, 30, 100, 4) == [30, 60, 100, 100]
    assert _retry_waits(lib, 100, 50, 3) == [50, 50, 50]  # a maximum under the interval
    assert _retry_waits(lib, 40, 40, 3) == [40, 40, 40]


@LIBS
def test_a_lost_connection_starts_the_doubling_again(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router = ctx.socket(lib.ROUTER)
        router.bind("tcp://127.0.0.1:0")
        dealer = ctx.socket(lib.DEALER)
        dealer.reconnect_ivl, dealer.reconnect_ivl_max = 30, 1000
        monitor = dealer.get_monitor_socket(
            lib.EVENT_HANDSHAKE_SUCCEEDED | lib.EVENT_CONNECT_RETRIED
        )
        monitor.rcvtimeo = 10_000
        dealer.connect(router.getsockopt(lib.LAST_ENDPOINT).decode())
        assert _next_event(lib, monitor) == (lib.EVENT_HANDSHAKE_SUCCEEDED, 0)
        router.close(linger=0)  # the port stays closed: every attempt after is refused
        waits = [_next_event(lib, monitor) for _ in range(4)]
        assert waits == [(lib.EVENT_CONNECT_RETRIED, w) for w in (30, 60, 120, 240)]
    finally:
        ctx.destroy(linger=0)
