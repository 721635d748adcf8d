"""Engine-to-engine routing over tcp, ipc and inproc: PUSH/PULL, DEALER, ROUTER and PAIR."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest
from enginekit import (
    STREAM_TRANSPORTS,
    TRANSPORTS,
    assert_quiet,
    async_test,
    network,
    recv,
    recv_n,
    until_delivered,
    within,
)

import engine

pytestmark = pytest.mark.timeout(90)


# -- PUSH / PULL ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_push_round_robins_across_pulls(transport: str) -> None:
    """Each of three PULLs gets exactly every third message, in order."""
    async with network(transport) as net:
        pulls = [net.socket(engine.PULL) for _ in range(3)]
        push = net.socket(engine.PUSH)
        for pull in pulls:
            push.connect(net.bind(pull))
        for i in range(30):
            await push.send(b"%d" % i)
        per_pull = [[m[0] for m in await recv_n(pull, 10)] for pull in pulls]
        everything = sorted(int(m) for p in per_pull for m in p)
        assert everything == list(range(30))
        for p in per_pull:
            nums = [int(m) for m in p]
            assert nums == sorted(nums)
            # Strict rotation: consecutive messages of one PULL are three apart.
            assert all(b - a == 3 for a, b in itertools.pairwise(nums))
        for pull in pulls:
            await assert_quiet(pull, 50)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_pull_fair_queues_several_pushes(transport: str) -> None:
    """Every pusher's messages arrive, each pusher's in its own order."""
    async with network(transport) as net:
        pull = net.socket(engine.PULL)
        ep = net.bind(pull)
        pushes = [net.socket(engine.PUSH) for _ in range(4)]
        for push in pushes:
            push.connect(ep)

        async def pusher(n: int, push: engine.asyncio.Socket) -> None:
            for i in range(300):
                await push.send_multipart([b"%d" % n, b"%d" % i])

        await within(asyncio.gather(*(pusher(n, p) for n, p in enumerate(pushes))))
        got = await recv_n(pull, 1200)
        seen: dict[int, list[int]] = {n: [] for n in range(4)}
        for sender, seq in got:
            seen[int(sender)].append(int(seq))
        assert all(v == list(range(300)) for v in seen.values())
        await assert_quiet(pull, 50)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_pull_interleaves_pushers(transport: str) -> None:
    """Fair queueing: a pusher with a big backlog does not starve one that sends later.

    The busy backlog sits at most RCVHWM deep in the PULL's queue (the rest waits in the
    kernel or at the sender), so a message from another pusher is served soon after.
    """
    async with network(transport) as net:
        pull = net.socket(engine.PULL, rcvhwm=10)
        ep = net.bind(pull)
        busy, late = net.socket(engine.PUSH), net.socket(engine.PUSH)
        busy.connect(ep)
        late.connect(ep)
        await until_delivered(busy, pull, [b"sync"])
        await until_delivered(late, pull, [b"sync"])

        async def backlog() -> None:
            for _ in range(20_000):
                await busy.send(b"busy")

        sender = asyncio.ensure_future(backlog())
        assert await recv(pull) == [b"busy"]  # the backlog is flowing
        await late.send(b"late")
        position = 0
        while (await recv(pull)) != [b"late"]:
            position += 1
        assert position < 100, f"the late message came after {position} busy ones"
        rest = await recv_n(pull, 20_000 - 1 - position)
        assert rest == [[b"busy"]] * len(rest)
        await within(sender)


# -- DEALER -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_dealer_round_robin_out_fair_in(transport: str) -> None:
    async with network(transport) as net:
        routers = [net.socket(engine.ROUTER) for _ in range(3)]
        dealer = net.socket(engine.DEALER, routing_id=b"dealer")
        for router in routers:
            dealer.connect(net.bind(router))
        for i in range(9):
            await dealer.send(b"%d" % i)
        for n, router in enumerate(routers):
            got = await recv_n(router, 3)
            assert [m[0] for m in got] == [b"dealer"] * 3
            assert [int(m[1]) for m in got] == [n, n + 3, n + 6]
            for _ in range(5):
                await router.send_multipart([b"dealer", b"from-%d" % n])
        replies = Counter(m[0] for m in await recv_n(dealer, 15))
        assert replies == {b"from-0": 5, b"from-1": 5, b"from-2": 5}


# -- ROUTER ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_router_generates_ids_starting_with_zero(transport: str) -> None:
    async with network(transport) as net:
        router = net.socket(engine.ROUTER)
        ep = net.bind(router)
        dealers = [net.socket(engine.DEALER) for _ in range(3)]
        ids = []
        for n, dealer in enumerate(dealers):
            dealer.connect(ep)
            await dealer.send(b"hi-%d" % n)
            rid, body = await recv(router)
            assert body == b"hi-%d" % n
            assert rid[:1] == b"\x00" and len(rid) > 1
            ids.append(rid)
        assert len(set(ids)) == 3
        for n, rid in enumerate(ids):
            await router.send_multipart([rid, b"reply-%d" % n])
        for n, dealer in enumerate(dealers):
            assert await recv(dealer) == [b"reply-%d" % n]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_router_uses_peer_routing_id(transport: str) -> None:
    async with network(transport) as net:
        router = net.socket(engine.ROUTER)
        ep = net.bind(router)
        alice = net.socket(engine.DEALER, routing_id=b"alice")
        bob = net.socket(engine.REQ, routing_id=b"bob")
        alice.connect(ep)
        bob.connect(ep)
        await alice.send_multipart([b"a1", b"a2"])
        assert await recv(router) == [b"alice", b"a1", b"a2"]
        await bob.send(b"question")
        assert await recv(router) == [b"bob", b"", b"question"]
        await router.send_multipart([b"bob", b"", b"answer"])
        await router.send_multipart([b"alice", b"x", b"y"])
        assert await recv(bob) == [b"answer"]
        assert await recv(alice) == [b"x", b"y"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_router_mandatory_unknown_id(transport: str) -> None:
    async with network(transport) as net:
        router = net.socket(engine.ROUTER)
        ep = net.bind(router)
        dealer = net.socket(engine.DEALER, routing_id=b"known")
        dealer.connect(ep)
        await dealer.send(b"hello")
        await recv(router)
        # Without ROUTER_MANDATORY an unknown id is dropped silently.
        await within(router.send_multipart([b"nobody", b"lost"]))
        router.router_mandatory = 1
        with pytest.raises(engine.ZMQError) as info:
            await router.send_multipart([b"nobody", b"x"])
        assert info.value.errno == engine.EHOSTUNREACH
        with pytest.raises(engine.ZMQError) as info:
            await router.send_multipart([b"nobody", b"x"], engine.DONTWAIT)
        assert info.value.errno == engine.EHOSTUNREACH
        await router.send_multipart([b"known", b"ok"])
        assert await recv(dealer) == [b"ok"]


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_router_mandatory_after_peer_leaves(transport: str) -> None:
    async with network(transport) as net:
        router = net.socket(engine.ROUTER, router_mandatory=1)
        ep = net.bind(router)
        dealer = net.socket(engine.DEALER, routing_id=b"gone")
        dealer.connect(ep)
        await dealer.send(b"hello")
        await recv(router)
        dealer.close(linger=0)

        async def unreachable() -> None:
            while True:
                try:
                    await router.send_multipart([b"gone", b"x"])
                except engine.ZMQError as exc:
                    assert exc.errno == engine.EHOSTUNREACH
                    return
                await asyncio.sleep(0.01)

        await within(unreachable())


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test(timeout=20)
async def test_router_connect_routing_id(transport: str) -> None:
    """CONNECT_ROUTING_ID names the peer of the next connect: a router can address it at once."""
    async with network(transport) as net:
        server = net.socket(engine.ROUTER, routing_id=b"server")
        ep = net.bind(server)
        client = net.socket(engine.ROUTER, routing_id=b"client", router_mandatory=1)
        client.connect_routing_id = b"srv"
        client.connect(ep)

        async def first_send() -> None:
            while True:
                try:
                    await client.send_multipart([b"srv", b"hello"])
                    return
                except engine.ZMQError as exc:
                    assert exc.errno == engine.EHOSTUNREACH
                    await asyncio.sleep(0.01)

        await within(first_send(), 5)
        assert await recv(server) == [b"client", b"hello"]
        await server.send_multipart([b"client", b"back"])
        assert await recv(client) == [b"srv", b"back"]


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_router_handover(transport: str) -> None:
    """With ROUTER_HANDOVER a new connection with a taken identity takes the route over."""
    async with network(transport) as net:
        router = net.socket(engine.ROUTER, router_handover=1)
        ep = net.bind(router)
        first = net.socket(engine.DEALER, routing_id=b"player")
        first.connect(ep)
        await first.send(b"one")
        assert await recv(router) == [b"player", b"one"]
        second = net.socket(engine.DEALER, routing_id=b"player")
        second.connect(ep)
        await second.send(b"two")
        assert await recv(router) == [b"player", b"two"]
        await router.send_multipart([b"player", b"to-new"])
        assert await recv(second) == [b"to-new"]
        await assert_quiet(first, 100)


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_router_refuses_duplicate_identity(transport: str) -> None:
    """Without handover the first connection keeps the id; the newcomer gets it once it leaves."""
    async with network(transport) as net:
        router = net.socket(engine.ROUTER)
        ep = net.bind(router)
        first = net.socket(engine.DEALER, routing_id=b"player")
        first.connect(ep)
        await first.send(b"one")
        assert await recv(router) == [b"player", b"one"]
        second = net.socket(engine.DEALER, routing_id=b"player")
        second.connect(ep)
        await second.send(b"dropped")
        await router.send_multipart([b"player", b"still-first"])
        assert await recv(first) == [b"still-first"]
        await assert_quiet(router, 200)
        await assert_quiet(second, 50)
        first.close(linger=0)

        async def admitted() -> None:
            # "dropped" comes first: the ROUTER held it, unread, while the id was taken
            # (tests/engine/test_router_taken_id.py).
            while True:
                await second.send(b"second-here", engine.DONTWAIT)
                while await router.poll(50):
                    msg = await router.recv_multipart()
                    assert msg in ([b"player", b"dropped"], [b"player", b"second-here"]), msg
                    if msg == [b"player", b"second-here"]:
                        return

        await within(admitted())
        await router.send_multipart([b"player", b"welcome"])
        assert await recv(second) == [b"welcome"]


# -- PAIR -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_pair_both_ways(transport: str) -> None:
    async with network(transport) as net:
        a, b = net.socket(engine.PAIR), net.socket(engine.PAIR)
        b.connect(net.bind(a))
        await b.send_multipart([b"ping", b"1"])
        assert await recv(a) == [b"ping", b"1"]
        await a.send(b"pong")
        assert await recv(b) == [b"pong"]
