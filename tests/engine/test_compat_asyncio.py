"""The asyncio face beside zmq.asyncio: the same lines run on both libraries.

Each was a gap found by running pyzmq's own asyncio tests on the engine. Most run twice: with
the sockets made inside the running loop (the engine keeps them on it) and made before any loop
runs, at a module's top, say (the engine keeps them on an I/O thread: the loop that will use
them is not known yet).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.engine.libkit import LIBS, tcp_pull_and_push

pytestmark = pytest.mark.timeout(60)

#: How long a test waits for what must come (s).
WAIT_S = 10

#: Where a test makes its sockets.
MADE = pytest.mark.parametrize("made", ["in-loop", "before-loop"])


def _asyncio_face(lib: Any) -> Any:
    return importlib.import_module(f"{lib.__name__}.asyncio")


def _with_pull_and_push(
    lib: Any, made: str, body: Callable[[Any, Any], Awaitable[Any]], runs: int = 1
) -> list[Any]:
    """`body(pull, push)` run `runs` times, each in a loop of its own (asyncio.run), with
    the sockets made in the first loop or before any."""
    ctx = _asyncio_face(lib).Context()
    made_now: list[Any] = []

    async def run() -> Any:
        if not made_now:
            made_now.extend(tcp_pull_and_push(lib, ctx))
        return await asyncio.wait_for(body(*made_now), WAIT_S)

    try:
        if made == "before-loop":
            made_now.extend(tcp_pull_and_push(lib, ctx))
        return [asyncio.run(run()) for _ in range(runs)]
    finally:
        ctx.destroy(linger=0)


@LIBS
@MADE
@pytest.mark.parametrize("copy", [True, False], ids=["bytes", "frames"])
def test_receives_waiting_together_take_a_multipart_message_a_frame_each(
    lib: Any, made: str, copy: bool
) -> None:
    """Two recv()s wait at once; a two-frame message comes: the first takes the first frame
    and the second the second (the engine's second waited on for ever: the first had kept
    the rest for a recv still to come, and nothing woke the one already waiting)."""

    async def body(pull: Any, push: Any) -> list[bytes]:
        first = pull.recv(copy=copy)
        second = pull.recv(copy=copy)
        whole = pull.recv_multipart(copy=copy)
        assert not (first.done() or second.done() or whole.done())
        await push.send_multipart([b"hi", b"there"])
        await push.send_multipart([b"and", b"then"])
        got = await asyncio.gather(first, second, whole)
        frames = [got[0], got[1], *got[2]]
        return [f if copy else f.bytes for f in frames]

    assert _with_pull_and_push(lib, made, body) == [[b"hi", b"there", b"and", b"then"]]


@LIBS
@MADE
def test_a_multipart_receive_waiting_behind_a_recv_takes_the_rest(lib: Any, made: str) -> None:
    """recv() then recv_multipart(), both waiting: the second gets what the first left."""

    async def body(pull: Any, push: Any) -> list[Any]:
        first = pull.recv()
        rest = pull.recv_multipart()
        await push.send_multipart([b"a", b"b", b"c"])
        return list(await asyncio.gather(first, rest))

    assert _with_pull_and_push(lib, made, body) == [[b"a", [b"b", b"c"]]]


@LIBS
@MADE
def test_a_cancelled_receive_is_done_at_once_and_takes_nothing(lib: Any, made: str) -> None:
    """cancel() on a waiting recv: done at once, and the next receive gets the message."""

    async def body(pull: Any, push: Any) -> list[bytes]:
        cancelled = pull.recv()
        after = pull.recv_multipart()
        assert cancelled.cancel()
        assert cancelled.done() and cancelled.cancelled()
        await push.send_multipart([b"hi", b"there"])
        return list(await after)

    assert _with_pull_and_push(lib, made, body) == [[b"hi", b"there"]]


@LIBS
def test_sockets_made_before_any_loop_serve_one_loop_after_another(lib: Any) -> None:
    """Made at the top, used in three asyncio.run()s in a row, each waiting (the engine's
    sockets lived on the loop asyncio's policy gave out then, which never ran: the first
    await raised "attached to a different loop")."""

    async def body(pull: Any, push: Any) -> bytes:
        waiting = pull.recv()
        await push.send(b"again")
        return bytes(await waiting)

    assert _with_pull_and_push(lib, "before-loop", body, runs=3) == [b"again"] * 3


@LIBS
@MADE
def test_a_poller_waits_on_sockets_wherever_they_were_made(lib: Any, made: str) -> None:
    """The asyncio Poller wakes for a socket made before the loop as for one made in it."""

    async def body(pull: Any, push: Any) -> list[Any]:
        poller = _asyncio_face(lib).Poller()
        poller.register(pull, lib.POLLIN)
        waiting = poller.poll(WAIT_S * 1000)
        assert not waiting.done()
        await push.send(b"ready")
        ready = await waiting
        return [ready == [(pull, lib.POLLIN)], await pull.recv()]

    runs = 2 if made == "before-loop" else 1  # (one made in a loop stays on that loop)
    assert _with_pull_and_push(lib, made, body, runs) == [[True, b"ready"]] * runs


@LIBS
def test_inproc_joins_a_socket_made_before_the_loop_to_one_made_in_it(lib: Any) -> None:
    """One context, an inproc PAIR across the two kinds (the engine's on an I/O thread and
    on the loop), both ways."""
    ctx = _asyncio_face(lib).Context()
    try:
        early = ctx.socket(lib.PAIR)
        early.bind("inproc://across")

        async def run() -> list[bytes]:
            late = ctx.socket(lib.PAIR)
            late.connect("inproc://across")
            waiting = early.recv()
            await late.send(b"to the early one")
            first = await asyncio.wait_for(waiting, WAIT_S)
            await early.send(b"and back")
            return [first, await asyncio.wait_for(late.recv(), WAIT_S)]

        assert asyncio.run(run()) == [b"to the early one", b"and back"]
    finally:
        ctx.destroy(linger=0)


@LIBS
@MADE
def test_closing_a_socket_cancels_its_waiting_receive(lib: Any, made: str) -> None:
    """close() with a recv waiting: the recv is cancelled, as zmq.asyncio does."""

    async def body(pull: Any, push: Any) -> bool:
        waiting = pull.recv()
        await asyncio.sleep(0)  # let it start waiting
        pull.close(linger=0)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return waiting.cancelled()

    assert _with_pull_and_push(lib, made, body) == [True]


@LIBS
def test_the_fd_of_a_socket_made_before_the_loop_says_a_message_came(lib: Any) -> None:
    """pyzmq's FD: once EVENTS has been read, the fd becomes readable when the socket's state
    changes (the engine's asyncio sockets had no FD: EINVAL; one made outside a loop now has
    its I/O thread's eventfd, as a sync socket)."""

    async def body(pull: Any, push: Any) -> list[Any]:
        fd = pull.getsockopt(lib.FD)
        assert not pull.getsockopt(lib.EVENTS) & lib.POLLIN
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(True))
        try:
            await push.send(b"news")
            await readable
        finally:
            loop.remove_reader(fd)
        return [bool(pull.getsockopt(lib.EVENTS) & lib.POLLIN), await pull.recv()]

    assert _with_pull_and_push(lib, "before-loop", body) == [[True, b"news"]]
