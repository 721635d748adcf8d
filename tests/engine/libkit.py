"""Helpers for tests that run the same lines against the engine and against libzmq (pyzmq).

Each takes the library module (`engine` or `zmq`) as `lib`, so one body checks both: what
libzmq does is the expected figure, and the engine must give the same.
"""

from __future__ import annotations

from typing import Any

import pytest
import zmq as pyzmq

import engine

#: Runs a test once on each library.
LIBS = pytest.mark.parametrize("lib", [engine, pyzmq], ids=["engine", "pyzmq"])
#: How long a test waits for what must come (ms).
WAIT_MS = 10_000


def accepted_without_blocking(sock: Any, lib: Any, frames: list[bytes], limit: int = 100) -> int:
    """How many messages `sock` takes with DONTWAIT before Again (at most `limit`)."""
    sent = 0
    try:
        while sent < limit:
            sock.send_multipart(frames, lib.DONTWAIT)
            sent += 1
    except lib.Again:
        pass
    return sent


def tcp_pull_and_push(lib: Any, ctx: Any) -> tuple[Any, Any]:
    """A PULL bound on a free loopback tcp port, and a PUSH connected to it."""
    pull = ctx.socket(lib.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(lib.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    return pull, push


def all_queued(sock: Any) -> list[list[bytes]]:
    """Every message `sock` has or gets within a last look of 200 ms (the sender stopped)."""
    got = []
    while sock.poll(200):
        got.append(sock.recv_multipart())
    return got


def mandatory_router_with_a_dealer(
    lib: Any, ctx: Any, name: str, router_sndhwm: int, dealer_rcvhwm: int
) -> tuple[Any, Any]:
    """A ROUTER_MANDATORY bound at inproc://`name`, and one DEALER, routed as b"d", that it
    has heard from (so it knows the id)."""
    router = ctx.socket(lib.ROUTER)
    router.setsockopt(lib.ROUTER_MANDATORY, 1)
    router.setsockopt(lib.SNDHWM, router_sndhwm)
    router.bind(f"inproc://{name}")
    dealer = ctx.socket(lib.DEALER)
    dealer.setsockopt(lib.RCVHWM, dealer_rcvhwm)
    dealer.setsockopt(lib.ROUTING_ID, b"d")
    dealer.connect(f"inproc://{name}")
    dealer.send(b"here")
    assert router.poll(WAIT_MS) and router.recv_multipart() == [b"d", b"here"]
    return router, dealer
