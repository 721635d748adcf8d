"""A SUB, XSUB or DISH starts with LINGER 0, as libzmq's constructors set it for those types:
closing one must not wait for subscriptions still queued. Every other type starts at -1.

The engine started them all at -1, so a subscriber whose publisher never came (nothing
listening at its endpoint) held `ctx.term()` for ever after `close()`, where libzmq returns
at once: the Guide's weather client with the server down never exited.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

import engine
from tests.engine.libkit import LIBS, WAIT_MS

pytestmark = pytest.mark.timeout(60)

STANDARD_TYPES = (
    "PAIR",
    "PUB",
    "SUB",
    "REQ",
    "REP",
    "DEALER",
    "ROUTER",
    "PULL",
    "PUSH",
    "XPUB",
    "XSUB",
    "STREAM",
)


def _port_nobody_listens_on() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def _term_returns(ctx: Any) -> bool:
    """Whether ctx.term() returns within WAIT_MS (it runs in a thread left behind if not)."""
    done = threading.Event()

    def term() -> None:
        ctx.term()
        done.set()

    threading.Thread(target=term, daemon=True).start()
    return done.wait(WAIT_MS / 1000)


@LIBS
def test_default_linger_of_each_type_is_libzmqs(lib: Any) -> None:
    ctx = lib.Context()
    try:
        defaults = {}
        for name in STANDARD_TYPES:
            sock = ctx.socket(getattr(lib, name))
            defaults[name] = sock.getsockopt(lib.LINGER)
            sock.close()
        expected = {name: -1 for name in STANDARD_TYPES} | {"SUB": 0, "XSUB": 0}
        assert defaults == expected
    finally:
        ctx.destroy(0)


@LIBS
@pytest.mark.parametrize("kind", ["SUB", "XSUB"])
def test_a_subscriber_whose_publisher_never_came_lets_term_return(lib: Any, kind: str) -> None:
    ctx = lib.Context()
    sub = ctx.socket(getattr(lib, kind))
    sub.connect(f"tcp://127.0.0.1:{_port_nobody_listens_on()}")
    if kind == "SUB":
        sub.subscribe(b"weather")
    else:
        sub.send(b"\x01weather")  # an XSUB subscribes by sending
    sub.close()  # LINGER as the type starts with
    assert _term_returns(ctx)


@LIBS
def test_the_contexts_linger_default_still_applies_to_a_subscriber(lib: Any) -> None:
    ctx = lib.Context()
    try:
        ctx.linger = 250
        sub = ctx.socket(lib.SUB)
        assert sub.getsockopt(lib.LINGER) == 250
        sub.close()
    finally:
        ctx.destroy(0)


def test_a_dish_starts_with_linger_0_as_libzmqs() -> None:
    """Engine only (pyzmq's libzmq has no draft types): libzmq's dish_t constructor stores
    LINGER 0 with the same comment as xsub_t's."""
    ctx = engine.Context()
    try:
        dish = ctx.socket(engine.DISH)
        assert dish.getsockopt(engine.LINGER) == 0
        dish.close()
    finally:
        ctx.destroy(0)
