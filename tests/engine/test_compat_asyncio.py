"""The asyncio face beside zmq.asyncio: the same lines run on both libraries.

Each was a gap found by running pyzmq's own asyncio tests on the engine.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest

from tests.engine.libkit import LIBS, tcp_pull_and_push

pytestmark = pytest.mark.timeout(60)

#: How long a test waits for what must come (s).
WAIT_S = 10


def _asyncio_face(lib: Any) -> Any:
    return importlib.import_module(f"{lib.__name__}.asyncio")


@LIBS
@pytest.mark.parametrize("copy", [True, False], ids=["bytes", "frames"])
def test_receives_waiting_together_take_a_multipart_message_a_frame_each(
    lib: Any, copy: bool
) -> None:
    """Two recv()s wait at once; a two-frame message comes: the first takes the first frame
    and the second the second (the engine's second waited on for ever: the first had kept
    the rest for a recv still to come, and nothing woke the one already waiting)."""

    async def run() -> list[bytes]:
        ctx = _asyncio_face(lib).Context()
        try:
            pull, push = tcp_pull_and_push(lib, ctx)
            first = pull.recv(copy=copy)
            second = pull.recv(copy=copy)
            whole = pull.recv_multipart(copy=copy)
            assert not (first.done() or second.done() or whole.done())
            await push.send_multipart([b"hi", b"there"])
            await push.send_multipart([b"and", b"then"])
            got = await asyncio.wait_for(asyncio.gather(first, second, whole), WAIT_S)
            frames = [got[0], got[1], *got[2]]
            return [f if copy else f.bytes for f in frames]
        finally:
            ctx.destroy(linger=0)

    assert asyncio.run(run()) == [b"hi", b"there", b"and", b"then"]


@LIBS
def test_a_multipart_receive_waiting_behind_a_recv_takes_the_rest(lib: Any) -> None:
    """recv() then recv_multipart(), both waiting: the second gets what the first left."""

    async def run() -> tuple[bytes, list[bytes]]:
        ctx = _asyncio_face(lib).Context()
        try:
            pull, push = tcp_pull_and_push(lib, ctx)
            first = pull.recv()
            rest = pull.recv_multipart()
            await push.send_multipart([b"a", b"b", b"c"])
            return await asyncio.wait_for(asyncio.gather(first, rest), WAIT_S)
        finally:
            ctx.destroy(linger=0)

    assert asyncio.run(run()) == [b"a", [b"b", b"c"]]
