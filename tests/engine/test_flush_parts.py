"""A broadcast to more peers than one flush writes (FLUSH_LINKS_PER_PASS): the rest goes out on
the loop's later passes, so other work on the loop (a ping's answer, say) runs in between; and
that holds while a task waits on the publishing socket itself, as a front's subscription reader
does (each write wakes that task, which must not write the rest before it goes back to sleep).
"""

from __future__ import annotations

import asyncio

import pytest
from enginekit import async_test, network, recv

import engine
from engine.pipe import FLUSH_LINKS_PER_PASS

pytestmark = pytest.mark.timeout(120)

PEERS = 2 * FLUSH_LINKS_PER_PASS + 10


@async_test(timeout=90)
async def test_a_long_flush_lets_the_loop_run_between_its_parts() -> None:
    async with network("tcp") as net:
        pub = net.socket(engine.XPUB)
        pub.setsockopt(engine.XPUB_VERBOSE, 1)  # every subscription comes up, not the first
        endpoint = net.bind(pub)
        subs = [net.socket(engine.SUB) for _ in range(PEERS)]
        for sub in subs:
            sub.connect(endpoint)
            sub.subscribe(b"")
        for _ in range(PEERS):
            assert await recv(pub) == [b"\x01"]
        reader = asyncio.ensure_future(pub.recv_multipart())
        await asyncio.sleep(0)
        unsent_seen: list[int] = []  # what was still unwritten each time another task ran
        done = False

        async def watch() -> None:
            while not done:
                unsent_seen.append(pub._core.unsent())
                await asyncio.sleep(0)

        watcher = asyncio.ensure_future(watch())
        await pub.send(b"news")
        for sub in subs:
            assert await recv(sub) == [b"news"]
        done = True
        await watcher
        reader.cancel()
        # Three parts (128, 128 and 10 links): the watcher ran after the first and after the
        # second. Written in one go, or all but the first part at once by the waking reader,
        # it would see at most one value in between.
        between = {unsent for unsent in unsent_seen if 0 < unsent < PEERS}
        assert len(between) >= 2, unsent_seen
