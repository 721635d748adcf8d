"""The fan-out row's subscribers: one libzmq SUB socket in a child process holding one CURVE
connection per subscriber, against a real engine XPUB."""

from __future__ import annotations

import asyncio
import time

import pytest

import engine
import engine.asyncio as engine_asyncio
from loadtest.bench_subscribers import RemoteSubscribers, source_addressed

pytestmark = pytest.mark.interop


def test_source_addressed_endpoints_are_distinct() -> None:
    endpoints = source_addressed("tcp://127.0.0.1:5555", 600)
    assert len(set(endpoints)) == 600
    assert endpoints[0] == "tcp://127.0.0.2:0;127.0.0.1:5555"
    assert endpoints[599].endswith(";127.0.0.1:5555")
    with pytest.raises(ValueError, match="ipc://x"):
        source_addressed("ipc://x", 2)
    with pytest.raises(
        ValueError, match="cannot open 10 subscriber"
    ):  # not reachable from a loopback source
        source_addressed("tcp://10.0.0.1:5555", 10)


def test_each_subscriber_is_its_own_connection_and_hears_once() -> None:
    asyncio.run(_each_subscriber_is_its_own_connection(count=5))


async def _each_subscriber_is_its_own_connection(count: int) -> None:
    public, secret = engine.curve_keypair()
    ctx = engine_asyncio.Context()
    xpub = ctx.socket(engine.XPUB)
    xpub.curve_server = True
    xpub.curve_publickey, xpub.curve_secretkey = public, secret
    xpub.setsockopt(engine.XPUB_VERBOSE, 1)  # every connection's subscription comes up
    xpub.bind("tcp://127.0.0.1:0")
    endpoint = xpub.getsockopt(engine.LAST_ENDPOINT).decode()
    group = await asyncio.to_thread(RemoteSubscribers, [(endpoint, public, count)], b"news")
    try:
        subscriptions = [await asyncio.wait_for(xpub.recv(), 30) for _ in range(count)]
        assert subscriptions == [b"\x01news"] * count
        marker = b"m1"
        group.watch(marker)
        await xpub.send(b"news " + marker)
        times = await group.finish(marker, 10.0)
        assert len(times) == count  # one copy per connection, all timed
        assert all(t <= time.perf_counter() for t in times)
        # Messages off the subscribed topic reach nobody.
        group.watch(b"m2")
        await xpub.send(b"other m2")
        await xpub.send(b"news m3")  # a later message on the topic is no arrival of m2
        assert await group.finish(b"m2", 0.5) == []
    finally:
        group.close()
        xpub.close(0)
        ctx.term()


def test_subscribers_in_several_regions_each_with_its_own_key() -> None:
    asyncio.run(_two_regions())


async def _two_regions() -> None:
    """Two publishers, each with its own CURVE key (as two relays): 2 subscribers behind one,
    3 behind the other; a marked event from both counts 5 arrivals, from one only 2."""
    ctx = engine_asyncio.Context()
    regions = []
    publishers = []
    for count in (2, 3):
        public, secret = engine.curve_keypair()
        xpub = ctx.socket(engine.XPUB)
        xpub.curve_server = True
        xpub.curve_publickey, xpub.curve_secretkey = public, secret
        xpub.setsockopt(engine.XPUB_VERBOSE, 1)
        xpub.bind("tcp://127.0.0.1:0")
        regions.append((xpub.getsockopt(engine.LAST_ENDPOINT).decode(), public, count))
        publishers.append(xpub)
    group = await asyncio.to_thread(RemoteSubscribers, regions, b"news")
    try:
        assert group.count == 5
        for xpub, (_, _, count) in zip(publishers, regions, strict=True):
            for _ in range(count):
                assert await asyncio.wait_for(xpub.recv(), 30) == b"\x01news"
        group.watch(b"both")
        for xpub in publishers:
            await xpub.send(b"news both")
        assert len(await group.finish(b"both", 10.0)) == 5
        group.watch(b"one")
        await publishers[0].send(b"news one")
        assert len(await group.finish(b"one", 0.5)) == 2  # the other region never had it
    finally:
        group.close()
        for xpub in publishers:
            xpub.close(0)
        ctx.term()
