"""PUB/SUB and XPUB/XSUB: prefix filtering, (un)subscriptions upstream, INVERT_MATCHING.

Propagation is never waited for by sleeping: either a probe is published until it arrives, or
an XPUB shows the subscription arriving.
"""

from __future__ import annotations

import pytest
from enginekit import TRANSPORTS, assert_quiet, async_test, network, recv, sync_pubsub

import engine
from engine.asyncio import Socket

pytestmark = pytest.mark.timeout(90)


async def collect_until(sub: Socket, sentinel: bytes) -> list[bytes]:
    """First frames received up to (not including) `sentinel`."""
    got = []
    while True:
        msg = await recv(sub)
        if msg[0] == sentinel:
            return got
        got.append(msg[0])


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_prefix_filtering(transport: str) -> None:
    async with network(transport) as net:
        pub, sub = net.socket(engine.PUB), net.socket(engine.SUB)
        sub.connect(net.bind(pub))
        sub.subscribe(b"game.")
        await sync_pubsub(pub, sub, b"game.probe")
        topics = [b"game.1", b"chat.1", b"gam", b"game.", b"GAME.2", b"game.long" * 100, b""]
        for t in topics:
            await pub.send_multipart([t, b"payload"])
        await pub.send(b"game.end")
        assert await collect_until(sub, b"game.end") == [b"game.1", b"game.", b"game.long" * 100]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_empty_subscription_matches_everything(transport: str) -> None:
    async with network(transport) as net:
        pub, sub = net.socket(engine.PUB), net.socket(engine.SUB)
        sub.connect(net.bind(pub))
        sub.subscribe(b"")
        await sync_pubsub(pub, sub)
        for t in (b"a", b"", b"\x00\x01"):
            await pub.send(t)
        await pub.send(b"end")
        assert await collect_until(sub, b"end") == [b"a", b"", b"\x00\x01"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_unsubscribe(transport: str) -> None:
    async with network(transport) as net:
        pub, sub = net.socket(engine.PUB), net.socket(engine.SUB)
        sub.connect(net.bind(pub))
        sub.subscribe(b"A")
        sub.subscribe(b"B")
        await sync_pubsub(pub, sub, b"B-probe")
        await sync_pubsub(pub, sub, b"A-probe")
        sub.unsubscribe(b"A")
        for t in (b"A1", b"B1", b"A2", b"B2"):
            await pub.send(t)
        await pub.send(b"B-end")
        assert await collect_until(sub, b"B-end") == [b"B1", b"B2"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_subscriptions_are_counted(transport: str) -> None:
    """Subscribing twice needs two unsubscribes before the topic goes."""
    async with network(transport) as net:
        xpub, sub = net.socket(engine.XPUB), net.socket(engine.SUB)
        sub.connect(net.bind(xpub))
        sub.subscribe(b"T")
        sub.subscribe(b"T")
        assert await recv(xpub) == [b"\x01T"]
        sub.unsubscribe(b"T")
        sub.subscribe(b"marker")
        assert await recv(xpub) == [b"\x01marker"]  # no cancel went up for T yet
        sub.unsubscribe(b"T")
        assert await recv(xpub) == [b"\x00T"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_multiple_subscribers(transport: str) -> None:
    async with network(transport) as net:
        pub = net.socket(engine.PUB)
        ep = net.bind(pub)
        wants = [[b"a"], [b"b", b"ab"], [b""]]
        subs = []
        for topics in wants:
            sub = net.socket(engine.SUB)
            sub.connect(ep)
            for t in topics:
                sub.subscribe(t)
            sub.subscribe(b"probe")
            await sync_pubsub(pub, sub)
            subs.append(sub)
        for t in (b"a1", b"b1", b"ab1", b"c1"):
            await pub.send(t)
        await pub.send(b"probe-end")
        expected = [[b"a1", b"ab1"], [b"b1", b"ab1"], [b"a1", b"b1", b"ab1", b"c1"]]
        for sub, want in zip(subs, expected, strict=True):
            # Earlier subscribers also saw the probes that synced the later ones.
            got = [m for m in await collect_until(sub, b"probe-end") if m != b"probe"]
            assert got == want


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_xpub_sees_first_subscription_and_last_cancel(transport: str) -> None:
    async with network(transport) as net:
        xpub = net.socket(engine.XPUB)
        ep = net.bind(xpub)
        s1, s2 = net.socket(engine.SUB), net.socket(engine.SUB)
        s1.connect(ep)
        s2.connect(ep)
        s1.subscribe(b"A")
        assert await recv(xpub) == [b"\x01A"]
        s2.subscribe(b"A")  # a duplicate: not shown
        s2.subscribe(b"m1")
        assert await recv(xpub) == [b"\x01m1"]
        s1.unsubscribe(b"A")  # s2 still has A: not shown
        s1.subscribe(b"m2")
        assert await recv(xpub) == [b"\x01m2"]
        s2.unsubscribe(b"A")  # the last one
        assert await recv(xpub) == [b"\x00A"]
        await assert_quiet(xpub, 50)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_xpub_verbose_shows_duplicates(transport: str) -> None:
    async with network(transport) as net:
        xpub = net.socket(engine.XPUB, xpub_verbose=1)
        ep = net.bind(xpub)
        s1, s2 = net.socket(engine.SUB), net.socket(engine.SUB)
        s1.connect(ep)
        s2.connect(ep)
        s1.subscribe(b"A")
        assert await recv(xpub) == [b"\x01A"]
        s2.subscribe(b"A")
        assert await recv(xpub) == [b"\x01A"]
        # VERBOSE covers subscriptions only: a cancel still shows only for the last subscriber.
        s1.unsubscribe(b"A")
        s1.subscribe(b"m")
        assert await recv(xpub) == [b"\x01m"]
        s2.unsubscribe(b"A")
        assert await recv(xpub) == [b"\x00A"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_departing_sub_cancels_its_topics(transport: str) -> None:
    async with network(transport) as net:
        xpub = net.socket(engine.XPUB)
        ep = net.bind(xpub)
        s1, s2 = net.socket(engine.SUB), net.socket(engine.SUB)
        s1.connect(ep)
        s1.subscribe(b"shared")
        s1.subscribe(b"only-s1")
        assert sorted(m[0] for m in [await recv(xpub), await recv(xpub)]) == [
            b"\x01only-s1",
            b"\x01shared",
        ]
        s2.connect(ep)
        s2.subscribe(b"shared")
        s2.subscribe(b"only-s2")
        assert await recv(xpub) == [b"\x01only-s2"]
        s1.close(linger=0)
        assert await recv(xpub) == [b"\x00only-s1"]
        s2.close(linger=0)
        assert sorted(m[0] for m in [await recv(xpub), await recv(xpub)]) == [
            b"\x00only-s2",
            b"\x00shared",
        ]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_xsub_sends_subscriptions_as_messages(transport: str) -> None:
    async with network(transport) as net:
        xpub, xsub = net.socket(engine.XPUB), net.socket(engine.XSUB)
        xsub.connect(net.bind(xpub))
        await xsub.send(b"\x01news")
        assert await recv(xpub) == [b"\x01news"]
        await xpub.send_multipart([b"news.1", b"body"])
        await xpub.send(b"sport.1")
        await xpub.send(b"news.2")
        assert await recv(xsub) == [b"news.1", b"body"]
        assert await recv(xsub) == [b"news.2"]
        # Anything else an XSUB sends goes upstream untouched.
        await xsub.send_multipart([b"hello", b"upstream"])
        assert await recv(xpub) == [b"hello", b"upstream"]
        await xsub.send(b"\x00news")
        assert await recv(xpub) == [b"\x00news"]
        await xpub.send(b"news.3")
        await assert_quiet(xsub, 100)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_xsub_subscribes_at_a_plain_pub(transport: str) -> None:
    async with network(transport) as net:
        pub, xsub = net.socket(engine.PUB), net.socket(engine.XSUB)
        xsub.connect(net.bind(pub))
        await xsub.send(b"\x01t")
        await sync_pubsub(pub, xsub, b"t-probe")
        await pub.send(b"u")
        await pub.send(b"t-end")
        assert await collect_until(xsub, b"t-end") == []


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_xpub_xsub_proxy_forwards_subscriptions(transport: str) -> None:
    """A SUB behind an XSUB/XPUB proxy gets what the PUB in front publishes."""
    async with network(transport) as net:
        pub, xsub = net.socket(engine.PUB), net.socket(engine.XSUB)
        xpub, sub = net.socket(engine.XPUB), net.socket(engine.SUB)
        xsub.connect(net.bind(pub))
        sub.connect(net.bind(xpub))
        sub.subscribe(b"x")
        subscription = await recv(xpub)
        assert subscription == [b"\x01x"]
        await xsub.send_multipart(subscription)
        while True:  # publish until the subscription has crossed the proxy
            await pub.send(b"x-probe")
            if await xsub.poll(20):
                break
        await xpub.send_multipart(await recv(xsub))
        assert await recv(sub) == [b"x-probe"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_invert_matching(transport: str) -> None:
    """With INVERT_MATCHING on both ends a subscriber gets what does NOT match its topics."""
    async with network(transport) as net:
        xpub = net.socket(engine.XPUB, invert_matching=1)
        sub = net.socket(engine.SUB, invert_matching=1)
        sub.connect(net.bind(xpub))
        sub.subscribe(b"A")
        assert await recv(xpub) == [b"\x01A"]  # the publisher knows the topic now
        for t in (b"A1", b"B1", b"AB", b"C1", b""):
            await xpub.send(t)
        await xpub.send(b"end")
        assert await collect_until(sub, b"end") == [b"B1", b"C1", b""]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_invert_matching_filters_at_the_publisher(transport: str) -> None:
    """The publisher alone applies the inverted match: a matching topic is not sent at all."""
    async with network(transport) as net:
        xpub = net.socket(engine.XPUB, invert_matching=1)
        xsub = net.socket(engine.XSUB, invert_matching=1)
        xsub.connect(net.bind(xpub))
        await xsub.send(b"\x01A")
        assert await recv(xpub) == [b"\x01A"]
        # Make the XSUB forget the topic locally without telling the publisher: every message
        # it receives now is one the publisher chose to send.
        xsub._core.filter.remove(b"A")
        await xpub.send(b"A1")
        await xpub.send(b"B1")
        assert await recv(xsub) == [b"B1"]


@async_test()
async def test_sub_cannot_send_and_pub_cannot_recv() -> None:
    async with network("inproc") as net:
        pub, sub = net.socket(engine.PUB), net.socket(engine.SUB)
        sub.connect(net.bind(pub))
        with pytest.raises(engine.ZMQError) as info:
            await sub.send(b"x")
        assert info.value.errno == engine.ENOTSUP
        with pytest.raises(engine.ZMQError) as info:
            await pub.recv()
        assert info.value.errno == engine.ENOTSUP
