"""A game worker (BatchingPirate) hands every job one read brought to its handler together,
in the pass that read them, and answers each, in order; it leaves no garbage cycles per batch
(a failed read used to raise into a future per batch, a cycle for the garbage collector); a
handler's crash ends run(), and stop() ends it at once."""

from __future__ import annotations

import asyncio
import gc

import pytest

import engine
import engine.asyncio as ezmq
from gameserver.worker import BatchingPirate

TIMEOUT_S = 10.0


class _Front:
    """A ROUTER playing the front: takes the READY, sends jobs, collects answers."""

    def __init__(self, ctx: ezmq.Context) -> None:
        self.router = ctx.socket(engine.ROUTER)
        self.endpoint = self.router.bind("tcp://127.0.0.1:0")

    async def ready(self) -> tuple[bytes, list[bytes]]:
        msg = await asyncio.wait_for(self.router.recv_multipart(), TIMEOUT_S)
        return msg[0], msg[1:]

    def send_jobs(self, identity: bytes, bodies: list[bytes]) -> None:
        for body in bodies:  # in one pass: written together, read together
            self.router.send_multipart_now([identity, b"client", b"", body])

    async def answers(self, count: int) -> list[list[bytes]]:
        got = []
        while len(got) < count:
            msg = await asyncio.wait_for(self.router.recv_multipart(), TIMEOUT_S)
            if len(msg) > 2:  # not a heartbeat
                got.append(msg[1:])
        return got


async def _batches() -> tuple[list[int], list[int]]:
    ctx = ezmq.Context()
    front = _Front(ctx)
    sizes: list[int] = []

    def handler(bodies: list[list[bytes]]) -> list[list[bytes]]:
        sizes.append(len(bodies))
        return [[b"done " + body[0]] for body in bodies]

    worker = BatchingPirate(front.endpoint, handler, credit=4, context=ctx)
    running = asyncio.create_task(worker.run())
    garbage = []
    try:
        identity, ready = await front.ready()
        assert ready[-1] == b"4"  # the credit
        for round_ in range(6):
            bodies = [b"job%d.%d" % (round_, i) for i in range(3)]
            front.send_jobs(identity, bodies)
            answers = await front.answers(3)
            assert answers == [[b"client", b"", b"done " + body] for body in bodies]
            garbage.append(gc.collect())
    finally:
        worker.stop()
        await asyncio.wait_for(running, TIMEOUT_S)
        ctx.destroy(linger=0)
    return sizes, garbage


def test_a_read_of_jobs_is_one_batch_answered_in_order_without_garbage() -> None:
    sizes, garbage = asyncio.run(_batches())
    assert sum(sizes) == 18
    assert max(sizes) > 1  # jobs written together were handled together
    assert garbage[1:] == [0] * 5  # the first round may collect the start's leftovers


def test_a_crashing_handler_ends_run_and_stop_ends_it_at_once() -> None:
    async def main() -> None:
        ctx = ezmq.Context()
        front = _Front(ctx)

        def broken(bodies: list[list[bytes]]) -> list[list[bytes]]:
            raise RuntimeError("a bug in a handler")

        worker = BatchingPirate(front.endpoint, broken, context=ctx)
        running = asyncio.create_task(worker.run())
        identity, _ = await front.ready()
        front.send_jobs(identity, [b"job"])
        with pytest.raises(RuntimeError, match="a bug in a handler"):
            await asyncio.wait_for(running, TIMEOUT_S)

        idle = BatchingPirate(front.endpoint, broken, context=ctx, interval=30.0)
        running = asyncio.create_task(idle.run())
        await front.ready()
        idle.stop()  # its next heartbeat is 30 s away: only stop() can end the wait
        await asyncio.wait_for(running, TIMEOUT_S)
        ctx.destroy(linger=0)

    asyncio.run(main())
