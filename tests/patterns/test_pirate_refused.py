"""A Paranoid Pirate worker that its queue refuses keeps reconnecting, on both faces.

A refused handshake (here: every ZAP request answered 400) ends the connection with its pipe,
as libzmq does, so a blocking send of READY or of a heartbeat had nowhere to go and waited for
ever: the worker never saw the queue's silence and never made the fresh connection that would
get it in once it is admitted. READY and heartbeats now go out without waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from enginekit import zap_handler

import engine
import engine.asyncio
from engine.patterns.paranoid_pirate import AsyncParanoidPirateWorker, ParanoidPirateWorker

pytestmark = pytest.mark.timeout(60)

WAIT_S = 10.0
#: Fast heartbeats and back-off, so that a lost queue is noticed within a fraction of a second.
TIMING = {"interval": 0.05, "liveness": 2, "reconnect_init": 0.05, "reconnect_max": 0.1}


@contextmanager
def refusing_queue() -> Iterator[tuple[str, list[bytes]]]:
    """A PLAIN ROUTER whose ZAP handler refuses everyone: its endpoint, and the ZAP requests'
    ids as they come (one per handshake)."""
    ctx = engine.Context()
    requests: list[bytes] = []

    def refuse(request: list[bytes]) -> list[bytes]:
        requests.append(request[1])
        return [b"400", b"no", b"", b""]

    try:
        with zap_handler(engine, ctx, refuse):
            queue = ctx.socket(engine.ROUTER)
            queue.plain_server = True
            queue.linger = 0
            queue.bind("tcp://127.0.0.1:0")
            yield queue.getsockopt(engine.LAST_ENDPOINT).decode(), requests
    finally:
        ctx.destroy(linger=0)


def _wait_for(requests: list[bytes], count: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while len(requests) < count and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a list the ZAP thread fills; the deadline bounds it
    assert len(requests) >= count, f"{len(requests)} handshake(s): the worker stopped trying"


def test_the_sync_worker_keeps_trying() -> None:
    with refusing_queue() as (endpoint, requests):
        ctx = engine.Context()
        ctx.plain_username, ctx.plain_password = b"worker", b"wrong"
        worker = ParanoidPirateWorker(endpoint, context=ctx, **TIMING)
        runner = threading.Thread(target=worker.run, daemon=True)
        runner.start()
        try:
            _wait_for(requests, 3)
        finally:
            worker.stop()
            runner.join(WAIT_S)
            ctx.destroy(linger=0)
        assert not runner.is_alive()


def test_the_asyncio_worker_keeps_trying() -> None:
    with refusing_queue() as (endpoint, requests):

        async def run() -> None:
            ctx = engine.asyncio.Context()
            ctx.plain_username, ctx.plain_password = b"worker", b"wrong"
            worker = AsyncParanoidPirateWorker(endpoint, context=ctx, **TIMING)
            task = asyncio.ensure_future(worker.run())
            try:
                deadline = time.monotonic() + WAIT_S
                while len(requests) < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)  # the ZAP thread fills the list
            finally:
                worker.stop()
                await asyncio.wait_for(task, WAIT_S)
                ctx.destroy(linger=0)

        asyncio.run(run())
        assert len(requests) >= 3, f"{len(requests)} handshake(s): the worker stopped trying"
