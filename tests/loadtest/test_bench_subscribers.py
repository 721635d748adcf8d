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
    group = await asyncio.to_thread(RemoteSubscribers, endpoint, count, b"news", public)
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
