"""A peer that comes to a ROUTER with a routing id already taken (no ROUTER_HANDOVER).

libzmq keeps such a newcomer connected but neither reads nor routes to it. The engine closed
its connection, so the newcomer redialled every RECONNECT_IVL, each time an accept and a
handshake for the same refusal, and over inproc it had no pipe at all (its sends blocked).
The first two tests run against both libraries; the last is the engine's own addition: the
newcomer takes the id when its holder leaves.
"""

from __future__ import annotations

from typing import Any

import pytest

import engine
from tests.engine.libkit import LIBS, WAIT_MS, accepted_without_blocking


def _endpoint(transport: str, tmp_path: Any) -> str:
    return {
        "tcp": "tcp://127.0.0.1:0",
        "ipc": f"ipc://{tmp_path}/router",
        "inproc": f"inproc://taken-{tmp_path.name}",
    }[transport]


def _router_with_holder(lib: Any, ctx: Any, where: str) -> tuple[Any, Any, str]:
    """A ROUTER bound at `where`, and a DEALER holding the id b"player" that it heard from."""
    router = ctx.socket(lib.ROUTER)
    router.bind(where)
    endpoint = router.getsockopt(lib.LAST_ENDPOINT).decode()
    holder = ctx.socket(lib.DEALER)
    holder.setsockopt(lib.ROUTING_ID, b"player")
    holder.connect(endpoint)
    holder.send(b"one")
    assert router.poll(WAIT_MS) and router.recv_multipart() == [b"player", b"one"]
    return router, holder, endpoint


def _events(monitor: Any, lib: Any, wait_ms: int) -> list[int]:
    """The monitor's event numbers, until none comes for `wait_ms`."""
    seen = []
    while monitor.poll(wait_ms):
        seen.append(int.from_bytes(monitor.recv_multipart()[0][:2], "little"))
    return seen


@LIBS
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_a_newcomer_with_a_taken_id_stays_connected_unheard(
    lib: Any, transport: str, tmp_path: Any
) -> None:
    ctx = lib.Context()
    try:
        router, holder, endpoint = _router_with_holder(lib, ctx, _endpoint(transport, tmp_path))
        monitor = router.get_monitor_socket()
        newcomer = ctx.socket(lib.DEALER)
        newcomer.setsockopt(lib.ROUTING_ID, b"player")
        newcomer.setsockopt(lib.RECONNECT_IVL, 10)
        newcomer.connect(endpoint)
        newcomer.send(b"unheard")
        assert router.poll(300) == 0  # 30 of the newcomer's reconnect intervals
        router.send_multipart([b"player", b"to-holder"])
        assert holder.poll(WAIT_MS) and holder.recv() == b"to-holder"
        assert newcomer.poll(100) == 0
        seen = _events(monitor, lib, 100)
        # one accept and one handshake: no closing, no redialling
        assert seen.count(lib.EVENT_ACCEPTED) == 1, seen
        assert lib.EVENT_DISCONNECTED not in seen, seen
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_an_inproc_newcomer_with_a_taken_id_queues_to_both_marks(lib: Any, tmp_path: Any) -> None:
    """Over inproc its pipe exists (libzmq's holds the sender's SNDHWM plus the ROUTER's
    RCVHWM, and nobody reads it); the engine gave it none, so its sends blocked at once."""
    ctx = lib.Context()
    try:
        where = _endpoint("inproc", tmp_path)
        router = ctx.socket(lib.ROUTER)
        router.setsockopt(lib.RCVHWM, 4)
        router.bind(where)
        holder = ctx.socket(lib.DEALER)
        holder.setsockopt(lib.ROUTING_ID, b"player")
        holder.connect(where)
        holder.send(b"one")
        assert router.poll(WAIT_MS) and router.recv_multipart() == [b"player", b"one"]
        newcomer = ctx.socket(lib.DEALER)
        newcomer.setsockopt(lib.ROUTING_ID, b"player")
        newcomer.setsockopt(lib.SNDHWM, 3)
        newcomer.connect(where)
        assert accepted_without_blocking(newcomer, lib, [b"unheard"]) == 3 + 4
        assert router.poll(200) == 0
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
def test_the_newcomer_takes_the_id_when_its_holder_leaves(transport: str, tmp_path: Any) -> None:
    """The engine's own step (libzmq's newcomer stays unheard for good): what the newcomer
    sent meanwhile comes first, under the id, and replies reach it."""
    ctx = engine.Context()
    try:
        router, holder, endpoint = _router_with_holder(engine, ctx, _endpoint(transport, tmp_path))
        newcomer = ctx.socket(engine.DEALER)
        newcomer.setsockopt(engine.ROUTING_ID, b"player")
        newcomer.connect(endpoint)
        for n in range(3):
            newcomer.send(b"meanwhile %d" % n)
        assert router.poll(200) == 0
        holder.close(linger=0)
        for n in range(3):
            assert router.poll(WAIT_MS)
            assert router.recv_multipart() == [b"player", b"meanwhile %d" % n]
        router.send_multipart([b"player", b"welcome"])
        assert newcomer.poll(WAIT_MS) and newcomer.recv() == b"welcome"
    finally:
        ctx.destroy(linger=0)


def test_newcomers_waiting_for_one_id_take_it_in_turn(tmp_path: Any) -> None:
    """Two newcomers wait for the id: each takes it as the one before it leaves, first come
    first, and a newcomer that leaves while waiting is passed over."""
    ctx = engine.Context()
    try:
        router, holder, endpoint = _router_with_holder(engine, ctx, _endpoint("tcp", tmp_path))
        waiting = []
        for name in (b"second", b"gives up", b"third"):
            newcomer = ctx.socket(engine.DEALER)
            newcomer.setsockopt(engine.ROUTING_ID, b"player")
            newcomer.connect(endpoint)
            newcomer.send(name)
            assert router.poll(200) == 0
            waiting.append(newcomer)
        waiting.pop(1).close(linger=0)
        for current in [holder, *waiting]:
            current.close(linger=0)
            if current is waiting[-1]:
                break
            assert router.poll(WAIT_MS)
            _, said = router.recv_multipart()
            assert said == (b"second" if current is holder else b"third")
        assert router.poll(200) == 0
    finally:
        ctx.destroy(linger=0)
