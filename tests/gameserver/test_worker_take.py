"""A game worker takes every job that has arrived in one pass (BatchingPirate._take) without
finding the end of the batch by a failed read: that failure was an exception raised into a
future, a reference cycle per batch left to the garbage collector."""

from __future__ import annotations

import asyncio
import gc

import engine
import engine.asyncio as ezmq
from gameserver.worker import BatchingPirate


async def _take_batches() -> list[int]:
    ctx = ezmq.Context()
    router = ctx.socket(engine.ROUTER)
    router.bind("tcp://127.0.0.1:0")
    endpoint = router.getsockopt(engine.LAST_ENDPOINT).decode()
    worker = BatchingPirate(endpoint, credit=4, context=ctx)
    sock, ready = worker._connect()
    found = []
    try:
        await sock.send_multipart(ready)
        identity = (await router.recv_multipart())[0]
        for size in (1, 3, 1, 2):
            for i in range(size):
                await router.send_multipart([identity, b"client", b"", b"job%d" % i])
            gc.collect()
            jobs = []
            while len(jobs) < size:  # a batch may arrive over more than one read
                assert await sock.poll(5000)
                jobs += await worker._take(sock)
            assert [job.body for job in jobs] == [[b"job%d" % i] for i in range(size)]
            found.append(gc.collect())
    finally:
        sock.close(linger=0)
        router.close(linger=0)
        ctx.term()
    return found


def test_taking_batches_of_jobs_leaves_no_garbage_cycles() -> None:
    assert asyncio.run(_take_batches()) == [0, 0, 0, 0]
