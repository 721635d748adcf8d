"""Connection life cycle: reconnects and backoff, heartbeats, unbind/disconnect, endpoints."""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import socket
import time
from pathlib import Path

import pytest
from enginekit import (
    STREAM_TRANSPORTS,
    TRANSPORTS,
    AcceptCounter,
    LaterEndpoint,
    Net,
    Proxy,
    assert_quiet,
    async_test,
    has_ipv6_loopback,
    link_count,
    network,
    recv,
    recv_n,
    sync_pubsub,
    tcp_port,
    until_delivered,
    wait_until,
    within,
)

import engine
from engine.asyncio import Socket
from engine.transport.heartbeats import LINKS_PER_SLOT, WHEEL_SLOTS

pytestmark = pytest.mark.timeout(90)


def _refused(port: int) -> bool:
    """Kernel view: does a plain TCP connect to this port get refused?"""
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED


# -- reconnect -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_reconnect_after_peer_rebinds(transport: str) -> None:
    async with network(transport) as net:
        pull = net.socket(engine.PULL)
        ep = net.bind(pull)
        push = net.socket(engine.PUSH, reconnect_ivl=50)
        push.connect(ep)
        await until_delivered(push, pull, [b"first-life"])
        for life in range(2):
            pull.close(linger=0)
            await wait_until(lambda: link_count(push) == 0, what="the drop to be noticed")
            pull = net.socket(engine.PULL)
            assert pull.bind(ep) == ep
            await until_delivered(push, pull, [b"life-%d" % life])


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_messages_queued_while_disconnected_survive_reconnect(transport: str) -> None:
    """Without IMMEDIATE, what is sent while the peer is away waits for it (as in libzmq)."""
    async with network(transport) as net:
        pull = net.socket(engine.PULL)
        ep = net.bind(pull)
        push = net.socket(engine.PUSH, reconnect_ivl=50)
        push.connect(ep)
        await until_delivered(push, pull, [b"sync"])
        pull.close(linger=0)
        await wait_until(lambda: link_count(push) == 0, what="the drop to be noticed")
        await push.send(b"while-away", engine.DONTWAIT)
        pull = net.socket(engine.PULL)
        pull.bind(ep)
        assert await recv(pull, timeout=3) == [b"while-away"]


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_sub_resubscribes_after_reconnect(transport: str) -> None:
    async with network(transport) as net:
        pub = net.socket(engine.PUB)
        ep = net.bind(pub)
        sub = net.socket(engine.SUB, reconnect_ivl=50)
        sub.connect(ep)
        sub.subscribe(b"t")
        await sync_pubsub(pub, sub, b"t-probe")
        pub.close(linger=0)
        await wait_until(lambda: link_count(sub) == 0, what="the drop to be noticed")
        # The application just waits in recv, as it would in real life (as in libzmq, the
        # socket does its bookkeeping when the application calls into it).
        pending = asyncio.ensure_future(sub.recv_multipart())
        pub = net.socket(engine.XPUB)
        pub.bind(ep)
        assert await recv(pub) == [b"\x01t"]  # sent again, without the app's help
        await pub.send(b"u-not-for-us")
        await pub.send(b"t-after")
        assert await within(pending) == [b"t-after"]


@async_test()
async def test_reconnect_ivl_paces_attempts() -> None:
    """A peer that hangs up at once is retried every RECONNECT_IVL (counted by accepts)."""
    counter = await AcceptCounter().start()
    try:
        async with network("tcp") as net:
            push = net.socket(engine.PUSH, reconnect_ivl=200)
            push.connect(f"tcp://127.0.0.1:{counter.port}")
            await wait_until(lambda: len(counter.accepts) >= 6, timeout=30, what="6 attempts")
            first, last = counter.accepts[0], counter.accepts[5]
            # Five waits of 200 ms each at least (slack for timer jitter, none for haste).
            assert last - first >= 5 * 0.2 * 0.9, counter.accepts
    finally:
        await counter.stop()


@async_test()
async def test_reconnect_ivl_negative_means_no_reconnect() -> None:
    counter = await AcceptCounter().start()
    try:
        async with network("tcp") as net:
            push = net.socket(engine.PUSH, reconnect_ivl=-1)
            push.connect(f"tcp://127.0.0.1:{counter.port}")
            await wait_until(lambda: len(counter.accepts) >= 1, what="the first attempt")
            await wait_until(lambda: link_count(push) == 0, what="the hang-up")
            control = net.socket(engine.PUSH, reconnect_ivl=20)
            control.connect(f"tcp://127.0.0.1:{counter.port}")
            # The control socket's retries show time passing; the first socket stays away.
            await wait_until(lambda: len(counter.accepts) >= 6, what="control retries")
            assert link_count(push) == 0
    finally:
        await counter.stop()


@async_test()
async def test_reconnect_backoff_doubles_up_to_max() -> None:
    """Refused attempts back off from RECONNECT_IVL, doubling up to RECONNECT_IVL_MAX
    exactly, as libzmq 4.3 (no random part once a maximum is set), and the socket waits
    each one out."""
    later = LaterEndpoint()
    attempts: list[tuple[float, int]] = []

    def monitor(event: int, value: int, endpoint: str) -> None:
        if event == engine.EVENT_CONNECT_RETRIED:  # its value: the wait before the next try
            attempts.append((time.monotonic(), value))

    async with network("tcp") as net:
        push = net.socket(engine.PUSH, reconnect_ivl=25, reconnect_ivl_max=400)
        push._endpoints.monitor = monitor  # white box: timed on the loop, as events happen
        push.connect(later.endpoint)
        await wait_until(lambda: len(attempts) >= 8, timeout=30, what="8 refused attempts")
        delays = [v for _, v in attempts[:8]]
        assert delays == [25, 50, 100, 200, 400, 400, 400, 400]
        for (t0, delay), (t1, _) in itertools.pairwise(attempts):
            assert t1 - t0 >= delay / 1000 * 0.8, (t1 - t0, delay)
        # Still trying at the capped pace: a listener that appears now is found soon.
        later.bind_now()
        counter = await AcceptCounter().start(later.port)
        try:
            await wait_until(lambda: len(counter.accepts) >= 1, timeout=10, what="reconnect")
        finally:
            await counter.stop()


# -- heartbeats ------------------------------------------------------------------------------------


async def _heartbeat_pair(
    net: Net, dealer_opts: dict[str, int], router_opts: dict[str, int]
) -> tuple[Socket, Socket, Proxy]:
    """DEALER -> proxy -> ROUTER(router_mandatory), with one message through."""
    router = net.socket(engine.ROUTER, router_mandatory=1, **router_opts)
    ep = net.bind(router)
    proxy = await Proxy(tcp_port(ep)).start()
    dealer = net.socket(engine.DEALER, routing_id=b"d", **dealer_opts)
    dealer.connect(proxy.endpoint)
    await dealer.send(b"hello")
    assert await recv(router) == [b"d", b"hello"]
    return dealer, router, proxy


async def _until_unreachable(router: Socket, rid: bytes) -> None:
    """Send to `rid` until ROUTER_MANDATORY says the peer is gone."""
    while True:
        try:
            await router.send_multipart([rid, b"are-you-there"], engine.DONTWAIT)
        except engine.ZMQError as exc:
            if exc.errno == engine.EHOSTUNREACH:
                return
            if exc.errno != engine.EAGAIN:
                raise
        await asyncio.sleep(0.02)


@async_test()
async def test_heartbeats_keep_a_live_link_up() -> None:
    async with network("tcp") as net:
        hb = {"heartbeat_ivl": 100, "heartbeat_timeout": 300, "heartbeat_ttl": 500}
        dealer, router, proxy = await _heartbeat_pair(net, hb, hb)
        try:
            base = dict(proxy.chunks)
            # Idle for well over the timeout, measured in heartbeats that crossed the proxy.
            await wait_until(
                lambda: min(proxy.chunks[k] - base[k] for k in base) >= 12,
                what="heartbeats both ways",
            )
            assert proxy.accepts == 1  # the same TCP connection all along
            await router.send_multipart([b"d", b"still-up"])
            assert await recv(dealer) == [b"still-up"]
        finally:
            await proxy.stop()


@async_test()
async def test_a_link_busy_both_ways_skips_its_pings_and_pings_again_when_quiet() -> None:
    """RFC 37 makes a PING optional and any traffic a sign of life: a link that heard from
    its peer and sent to it within the interval skips the PING (white box: the bound side's
    link notes when it last sent one). Quiet, or busy one way only, it pings again."""
    async with network("tcp") as net:
        ivl = 0.1
        hb = {"heartbeat_ivl": round(ivl * 1000), "heartbeat_timeout": 300}
        dealer, router, proxy = await _heartbeat_pair(net, {}, hb)  # only the ROUTER pings
        try:
            (link,) = router._endpoints.links
            start = link._next_ping

            async def exchange() -> None:
                await dealer.send(b"ask")
                assert await recv(router) == [b"d", b"ask"]
                await router.send_multipart([b"d", b"answer"])
                assert await recv(dealer) == [b"answer"]
                await asyncio.sleep(ivl / 10)  # pacing: about ten exchanges an interval

            while link._next_ping < start + 5 * ivl:  # five PINGs came due meanwhile
                await exchange()
            assert link._ping_sent == 0.0  # none sent
            await wait_until(lambda: link._ping_sent > 0.0, what="a PING once quiet")
            await exchange()  # still the same, live link
            one_way_from = link._ping_sent
            while link._ping_sent == one_way_from:  # only the ROUTER talks now
                await router.send_multipart([b"d", b"news"])
                assert await recv(dealer) == [b"news"]
                await asyncio.sleep(ivl / 10)
            assert proxy.accepts == 1
        finally:
            await proxy.stop()


@async_test()
async def test_heartbeat_timeout_drops_a_dead_peer() -> None:
    async with network("tcp") as net:
        hb = {"heartbeat_ivl": 100, "heartbeat_timeout": 300}
        _dealer, router, proxy = await _heartbeat_pair(net, hb, hb)
        try:
            proxy.frozen = True
            # The connecting side gives up and reconnects: a second accept at the proxy.
            await wait_until(lambda: proxy.accepts >= 2, what="the dealer to reconnect")
            # The bound side drops its end too.
            await within(_until_unreachable(router, b"d"))
        finally:
            await proxy.stop()


@async_test()
async def test_one_heartbeat_wheel_drops_only_the_silent_peer() -> None:
    """A socket's links share one heartbeat timer; a frozen peer among them is dropped, the
    live one stays up on its first connection."""
    async with network("tcp") as net:
        hb = {"heartbeat_ivl": 100, "heartbeat_timeout": 300}
        router = net.socket(engine.ROUTER, router_mandatory=1, **hb)
        port = tcp_port(net.bind(router))
        proxies = [await Proxy(port).start() for _ in range(2)]
        try:
            for rid, proxy in zip((b"live", b"dead"), proxies, strict=True):
                dealer = net.socket(engine.DEALER, routing_id=rid, **hb)
                dealer.connect(proxy.endpoint)
                await dealer.send(b"hello")
                assert await recv(router) == [rid, b"hello"]
            wheels = router._endpoints.heartbeats  # white box: one timer for both links
            assert [wheel.size for wheel in wheels.values()] == [2]
            proxies[1].frozen = True
            await within(_until_unreachable(router, b"dead"))
            assert proxies[0].accepts == 1
            await router.send_multipart([b"live", b"still-up"], engine.DONTWAIT)
            assert [wheel.size for wheel in wheels.values()] == [1]
        finally:
            for proxy in proxies:
                await proxy.stop()


@async_test()
async def test_a_wheel_with_few_links_uses_few_slots_in_groups_of_at_most_links_per_slot() -> None:
    """The wheel groups its links' checks: ceil(links / LINKS_PER_SLOT) slots are used, none
    holds more than LINKS_PER_SLOT, so a socket with few links wakes a few times a period and
    a crowded one still spreads its PINGs (white box: the wheel's slots)."""
    links = 2 * LINKS_PER_SLOT + 3
    async with network("tcp") as net:
        hb = {"heartbeat_ivl": 60_000, "heartbeat_timeout": 180_000}
        router = net.socket(engine.ROUTER, **hb)
        endpoint = net.bind(router)
        for n in range(links):
            dealer = net.socket(engine.DEALER, routing_id=b"p%d" % n)
            dealer.connect(endpoint)
            await dealer.send(b"hello")
        await recv_n(router, links)
        (wheel,) = router._endpoints.heartbeats.values()
        await wait_until(lambda: wheel.size == links, what="every link on the wheel")
        sizes = [len(slot) for slot in wheel.slots]
        in_use = [size for size in sizes if size]
        assert len(in_use) == -(-links // LINKS_PER_SLOT)
        assert max(in_use) <= LINKS_PER_SLOT
        assert sizes[len(in_use) :] == [0] * (WHEEL_SLOTS - len(in_use))


@async_test()
async def test_heartbeat_ttl_makes_the_peer_drop_us() -> None:
    """Our HEARTBEAT_TTL tells a peer with no heartbeat settings of its own when to give up."""
    async with network("tcp") as net:
        dealer_hb = {"heartbeat_ivl": 100, "heartbeat_ttl": 500, "heartbeat_timeout": 60_000}
        _dealer, router, proxy = await _heartbeat_pair(net, dealer_hb, {})
        try:
            base = proxy.chunks["down"]
            await wait_until(lambda: proxy.chunks["down"] >= base + 3, what="PINGs with the TTL")
            proxy.frozen = True
            await within(_until_unreachable(router, b"d"))
            assert proxy.accepts == 1  # the dealer itself did not time out
        finally:
            await proxy.stop()


@async_test()
async def test_no_heartbeats_no_drop_of_a_silent_link() -> None:
    """Without heartbeats a silent (frozen) link stays up: only heartbeats detect it."""
    async with network("tcp") as net:
        _dealer, router, proxy = await _heartbeat_pair(net, {}, {})
        try:
            proxy.frozen = True
            control = net.socket(engine.DEALER, heartbeat_ivl=50, heartbeat_timeout=150)
            control_proxy = await Proxy(tcp_port(router.last_endpoint.decode())).start()
            control.connect(control_proxy.endpoint)
            await until_delivered(control, router, [b"c"])
            control_proxy.frozen = True
            # By the time the heartbeating control link has been dropped and redialled...
            await wait_until(lambda: control_proxy.accepts >= 2, what="control drop")
            await control_proxy.stop()
            # ...the silent, heartbeat-less link is still in place.
            await router.send_multipart([b"d", b"queued"], engine.DONTWAIT)
            assert proxy.accepts == 1
        finally:
            await proxy.stop()


# -- unbind / disconnect ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_unbind(transport: str) -> None:
    async with network(transport) as net:
        pull = net.socket(engine.PULL)
        ep = net.bind(pull)
        push = net.socket(engine.PUSH, reconnect_ivl=50)
        push.connect(ep)
        await until_delivered(push, pull, [b"sync"])
        pull.unbind(ep)
        if transport == "tcp":
            assert _refused(tcp_port(ep))
        elif transport == "ipc":
            assert not os.path.exists(ep[len("ipc://") :])
        else:
            late = net.socket(engine.PUSH)
            late.connect(ep)  # the name is free again: this waits for a new binder
            await late.send(b"to-nobody", engine.DONTWAIT)
            await assert_quiet(pull, 100)
        with pytest.raises(engine.ZMQError) as info:
            pull.unbind(ep)
        assert info.value.errno == engine.ENOENT
        # Binding again works, and the old peer comes back (inproc peers joined while bound).
        pull.bind(ep)
        if transport != "inproc":
            await until_delivered(push, pull, [b"again"])


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test(timeout=30)
async def test_disconnect(transport: str) -> None:
    async with network(transport) as net:
        keep, drop = net.socket(engine.PULL), net.socket(engine.PULL)
        keep_ep, drop_ep = net.bind(keep), net.bind(drop)
        push = net.socket(engine.PUSH)
        push.connect(keep_ep)
        push.connect(drop_ep)
        await until_delivered(push, keep, [b"sync"])
        await until_delivered(push, drop, [b"sync"])
        # PUSH takes turns: probes meant for `drop` may have gone to `keep` meanwhile.
        while await keep.poll(100):
            await keep.recv_multipart()
        push.disconnect(drop_ep)
        for i in range(10):
            await push.send(b"%d" % i)
        assert [m[0] for m in await recv_n(keep, 10, timeout=3)] == [b"%d" % i for i in range(10)]
        await assert_quiet(drop, 100)
        with pytest.raises(engine.ZMQError) as info:
            push.disconnect(drop_ep)
        assert info.value.errno == engine.ENOENT


# -- endpoints -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_last_endpoint(transport: str) -> None:
    async with network(transport) as net:
        pull, push = net.socket(engine.PULL), net.socket(engine.PUSH)
        assert pull.last_endpoint == b""
        ep = net.bind(pull)
        assert pull.last_endpoint == ep.encode()
        assert pull.getsockopt_string(engine.LAST_ENDPOINT) == ep
        if transport == "tcp":
            assert tcp_port(ep) > 0
        push.connect(ep)
        assert push.last_endpoint == ep.encode()
        await until_delivered(push, pull, [b"x"])


@pytest.mark.parametrize("address", ["tcp://*:0", "tcp://*:*", "tcp://0.0.0.0:0"])
@async_test()
async def test_tcp_wildcards(address: str) -> None:
    async with network("tcp") as net:
        pull = net.socket(engine.PULL)
        ep = pull.bind(address)
        port = tcp_port(ep)
        assert 0 < port < 65536
        assert ep == f"tcp://0.0.0.0:{port}"
        push = net.socket(engine.PUSH)
        push.connect(f"tcp://127.0.0.1:{port}")
        await until_delivered(push, pull, [b"via-wildcard"])


@async_test()
async def test_bind_to_random_port() -> None:
    async with network("tcp") as net:
        pull = net.socket(engine.PULL)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        push = net.socket(engine.PUSH)
        push.connect(f"tcp://127.0.0.1:{port}")
        await until_delivered(push, pull, [b"x"])


def test_bind_to_random_port_refuses_an_address_without_ports(tmp_path: Path) -> None:
    """An ipc address has no port: the engine bound a file named `...:0` and said port 0."""
    ctx = engine.Context()
    try:
        sock = ctx.socket(engine.PULL)
        with pytest.raises(engine.ZMQError) as refused:
            sock.bind_to_random_port(f"ipc://{tmp_path}/sock")
        assert refused.value.errno == engine.EINVAL
        assert list(tmp_path.iterdir()) == []
    finally:
        ctx.destroy(linger=0)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
@async_test()
async def test_ipv6_loopback() -> None:
    async with network("tcp") as net:
        pull = net.socket(engine.PULL, ipv6=1)
        ep = pull.bind("tcp://[::1]:0")
        assert ep.startswith("tcp://[::1]:")
        push = net.socket(engine.PUSH, ipv6=1)
        push.connect(ep)
        await until_delivered(push, pull, [b"over-ipv6"])


@async_test()
async def test_localhost_by_name() -> None:
    async with network("tcp") as net:
        pull = net.socket(engine.PULL)
        port = tcp_port(pull.bind("tcp://127.0.0.1:0"))
        push = net.socket(engine.PUSH)
        push.connect(f"tcp://localhost:{port}")
        await until_delivered(push, pull, [b"by-name"])
        other = net.socket(engine.PULL)
        ep = other.bind("tcp://localhost:0")
        push2 = net.socket(engine.PUSH)
        push2.connect(f"tcp://127.0.0.1:{tcp_port(ep)}")
        await until_delivered(push2, other, [b"bound-by-name"])


@async_test()
async def test_ipc_wildcard() -> None:
    async with network("ipc") as net:
        pull = net.socket(engine.PULL)
        ep = pull.bind("ipc://*")
        assert ep.startswith("ipc://") and ep != "ipc://*"
        path = ep[len("ipc://") :]
        assert os.path.exists(path)
        push = net.socket(engine.PUSH)
        push.connect(ep)
        await until_delivered(push, pull, [b"via-ipc-wildcard"])
        pull.close(linger=0)
        assert not os.path.exists(path)  # the socket file is cleaned up


@async_test()
async def test_inproc_between_sockets_of_one_context() -> None:
    async with network("inproc") as net:
        rep, req = net.socket(engine.REP), net.socket(engine.REQ)
        rep.bind("inproc://service")
        req.connect("inproc://service")
        await req.send(b"q")
        assert await recv(rep) == [b"q"]
        await rep.send(b"a")
        assert await recv(req) == [b"a"]
        with pytest.raises(engine.ZMQError) as info:
            net.socket(engine.REP).bind("inproc://service")
        assert info.value.errno == engine.EADDRINUSE


@async_test()
async def test_inproc_connect_before_bind() -> None:
    async with network("inproc") as net:
        req = net.socket(engine.REQ)
        req.connect("inproc://later")
        await req.send(b"early-question", engine.DONTWAIT)
        rep = net.socket(engine.REP)
        rep.bind("inproc://later")
        assert await recv(rep) == [b"early-question"]
        await rep.send(b"answer")
        assert await recv(req) == [b"answer"]


@async_test()
async def test_inproc_names_are_per_context() -> None:
    async with network("inproc") as net, network("inproc") as other:
        pull = net.socket(engine.PULL)
        pull.bind("inproc://shared-name")
        stranger = other.socket(engine.PUSH)
        stranger.connect("inproc://shared-name")
        await stranger.send(b"wrong-context", engine.DONTWAIT)
        await assert_quiet(pull, 100)


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
@async_test()
async def test_bind_twice_is_eaddrinuse(transport: str) -> None:
    async with network(transport) as net:
        ep = net.bind(net.socket(engine.PULL))
        with pytest.raises(engine.ZMQError) as info:
            net.socket(engine.PULL).bind(ep)
        assert info.value.errno == engine.EADDRINUSE


@pytest.mark.parametrize(
    ("address", "errno_"),
    [
        ("tcp://127.0.0.1", engine.EINVAL),
        ("tcp://127.0.0.1:notaport", engine.EINVAL),
        ("nonsense", engine.EINVAL),
        ("sctp://127.0.0.1:5555", engine.EPROTONOSUPPORT),
        # udp exists, but for RADIO, DISH and DGRAM only (libzmq's error for the others).
        ("udp://127.0.0.1:5555", engine.ENOCOMPATPROTO),
        ("epgm://127.0.0.1;239.1.1.1:5555", engine.ENOCOMPATPROTO),
    ],
)
@async_test()
async def test_bad_endpoints(address: str, errno_: int) -> None:
    async with network("tcp") as net:
        for call in (net.socket(engine.PULL).bind, net.socket(engine.PUSH).connect):
            with pytest.raises(engine.ZMQError) as info:
                call(address)
            assert info.value.errno == errno_


@async_test()
async def test_connect_to_wildcard_rejected() -> None:
    async with network("tcp") as net:
        with pytest.raises(engine.ZMQError) as info:
            net.socket(engine.PUSH).connect("tcp://127.0.0.1:*")
        assert info.value.errno == engine.EINVAL
