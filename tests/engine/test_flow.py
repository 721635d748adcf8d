"""Flow control and message fate: high-water marks, CONFLATE, IMMEDIATE, LINGER, MAXMSGSIZE."""

from __future__ import annotations

import asyncio
import fcntl
import struct
import termios
import time

import pytest
from enginekit import (
    STREAM_TRANSPORTS,
    TRANSPORTS,
    AcceptCounter,
    LaterEndpoint,
    Proxy,
    assert_quiet,
    async_test,
    link_count,
    network,
    recv,
    recv_n,
    until_delivered,
    wait_until,
    within,
)

import engine
from engine.asyncio import Socket

pytestmark = pytest.mark.timeout(90)

BIG = b"b" * 64_000


async def fill(sock: Socket, frames: list[bytes]) -> int:
    """Send under DONTWAIT until the socket stays blocked for half a second; returns the count.

    The half second only decides when to stop trying; nothing asserted depends on it.
    """
    sent = 0
    while True:
        try:
            await sock.send_multipart(frames, engine.DONTWAIT)
            sent += 1
            continue
        except engine.Again:
            pass
        if not await sock.poll(500, engine.POLLOUT):
            return sent


def unread_bytes(sock: Socket) -> int:
    """Kernel view: bytes waiting in the receive queues of the socket's stream connections."""
    total = 0
    for link in sock._endpoints.links:
        raw = link.transport.get_extra_info("socket")
        buf = fcntl.ioctl(raw.fileno(), termios.FIONREAD, b"\0\0\0\0")
        total += struct.unpack("i", buf)[0]
    return total


# -- high-water marks -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_push_blocks_at_hwm_when_peer_does_not_read(transport: str) -> None:
    """DONTWAIT raises Again, SNDTIMEO raises Again, and nothing sent is ever lost."""
    async with network(transport) as net:
        pull = net.socket(engine.PULL, rcvhwm=2)
        push = net.socket(engine.PUSH, sndhwm=2)
        push.connect(net.bind(pull))
        await until_delivered(push, pull, [b"sync"])
        frame = BIG if transport != "inproc" else b"small"
        sent = await within(fill(push, [frame]), 60)
        assert sent >= 2
        if transport == "inproc":
            assert sent <= 2 + 2  # SNDHWM + RCVHWM: nothing else buffers in between
        with pytest.raises(engine.Again):
            await push.send(frame, engine.DONTWAIT)
        push.sndtimeo = 100
        with pytest.raises(engine.Again):
            await push.send(frame)
        assert await push.poll(0, engine.POLLOUT) == 0
        # Reading makes room again, and every accepted message arrives.
        push.sndtimeo = -1
        last = asyncio.ensure_future(push.send(b"last"))
        await asyncio.sleep(0)
        assert not last.done()  # a plain send blocks...
        got = await recv_n(pull, sent + 1, timeout=30)  # ...until the peer reads
        await within(last)
        assert got == [[frame]] * sent + [[b"last"]]


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_push_queues_up_to_hwm_without_peer(transport: str) -> None:
    """Connected to nobody (yet), PUSH queues exactly SNDHWM messages and then blocks."""
    async with network(transport) as net:
        push = net.socket(engine.PUSH, sndhwm=7)
        later = LaterEndpoint("tcp" if transport == "tcp" else f"ipc://{net.tmp}/nobody.ipc")
        push.connect(later.endpoint)
        for i in range(7):
            await push.send(b"%d" % i, engine.DONTWAIT)
        with pytest.raises(engine.Again):
            await push.send(b"x", engine.DONTWAIT)
        push.sndtimeo = 50
        with pytest.raises(engine.Again):
            await push.send(b"x")
        pull = net.socket(engine.PULL)
        pull.bind(later.bind_now())
        assert [m[0] for m in await recv_n(pull, 7)] == [b"%d" % i for i in range(7)]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_pub_drops_at_hwm_instead_of_blocking(transport: str) -> None:
    async with network(transport) as net:
        pub = net.socket(engine.PUB, sndhwm=10)
        sub = net.socket(engine.SUB, rcvhwm=10)
        sub.connect(net.bind(pub))
        sub.subscribe(b"")
        while True:  # wait for the subscription without sleeping
            await pub.send(b"probe")
            if await sub.poll(20):
                break
        while await sub.poll(100):
            await sub.recv()
        payload = b"p" * 1000

        async def burst() -> None:
            for i in range(10_000):
                await pub.send_multipart([b"%d" % i, payload], engine.DONTWAIT)  # never Again

        await within(burst(), 30)

        async def end_marker() -> None:
            while True:  # the marker itself may be dropped: repeat it
                await pub.send(b"end")
                await asyncio.sleep(0.02)

        marker = asyncio.ensure_future(end_marker())
        try:
            seqs = []
            while True:
                msg = await recv(sub)
                if msg == [b"end"]:
                    break
                seqs.append(int(msg[0]))
        finally:
            marker.cancel()
        assert 0 < len(seqs) < 10_000
        assert seqs == sorted(seqs)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test(timeout=90)
async def test_small_hwms_lose_nothing(transport: str) -> None:
    """RCVHWM pauses reading and resumes as the app reads: 10k messages, none lost."""
    async with network(transport) as net:
        pull = net.socket(engine.PULL, rcvhwm=5)
        push = net.socket(engine.PUSH, sndhwm=5)
        push.connect(net.bind(pull))
        n = 10_000

        async def produce() -> None:
            for i in range(n):
                await push.send_multipart([b"%d" % i, b"z" * (i % 300)])

        producer = asyncio.ensure_future(produce())
        for i in range(n):
            msg = await recv(pull)
            assert msg == [b"%d" % i, b"z" * (i % 300)]
            if i % 2500 == 0:
                await asyncio.sleep(0.05)  # a slow reader for a moment (not a sync point)
        await within(producer)
        await assert_quiet(pull, 50)


# -- CONFLATE -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_conflate_keeps_only_latest(transport: str) -> None:
    async with network(transport) as net:
        pull = net.socket(engine.PULL, conflate=1)
        push = net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        for i in range(200):
            await push.send(b"%d" % i)
        got = []
        while not got or got[-1] != 199:
            got.append(int((await recv(pull))[0]))
        assert got == sorted(got)
        assert len(got) <= 5, f"conflation let {len(got)} messages through"
        await assert_quiet(pull, 50)


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_conflate_newest_wins_across_bursts(transport: str) -> None:
    """Two bursts both arrive before the app reads: it must get the newest message."""
    async with network(transport) as net:
        pull = net.socket(engine.PULL, conflate=1)
        push = net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        await wait_until(lambda: link_count(pull) == 1, what="connection")
        for burst in (range(100), range(100, 200)):
            for i in burst:
                await push.send(b"%d" % i)
            await wait_until(lambda: push._core.unsent() == 0, what="sender flushed")
            await wait_until(
                lambda: link_count(pull) == 1 and unread_bytes(pull) == 0,
                timeout=3,
                what="receiver read everything from the kernel",
            )
        assert await recv(pull) == [b"199"]


# -- IMMEDIATE and connect-before-bind -------------------------------------------------------------


def _unbound_address(net_tmp: str, transport: str) -> LaterEndpoint:
    if transport == "tcp":
        return LaterEndpoint()
    if transport == "ipc":
        return LaterEndpoint(f"ipc://{net_tmp}/later.ipc")
    return LaterEndpoint(f"inproc://later-{time.monotonic_ns()}")


# IMMEDIATE is for connections that come and go: an inproc connect makes its pipe at once
# whatever it says, as libzmq's does (tests/engine/test_immediate_inproc.py).
@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_immediate_does_not_queue_for_absent_peer(transport: str) -> None:
    async with network(transport) as net:
        later = _unbound_address(net.tmp, transport)
        push = net.socket(engine.PUSH, immediate=1)
        push.connect(later.endpoint)
        with pytest.raises(engine.Again):
            await push.send(b"x", engine.DONTWAIT)
        push.sndtimeo = 100
        with pytest.raises(engine.Again):
            await push.send(b"x")
        assert await push.poll(50, engine.POLLOUT) == 0
        pull = net.socket(engine.PULL)
        pull.bind(later.bind_now())
        push.sndtimeo = -1
        await within(push.send(b"after-bind"))  # waits for the connection, then goes
        assert await recv(pull) == [b"after-bind"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_connect_before_bind_queues(transport: str) -> None:
    """IMMEDIATE=0 (the default): messages sent before the peer binds wait and then arrive."""
    async with network(transport) as net:
        later = _unbound_address(net.tmp, transport)
        push = net.socket(engine.PUSH)
        assert push.immediate == 0
        push.connect(later.endpoint)
        for i in range(5):
            await push.send(b"early-%d" % i, engine.DONTWAIT)
        pull = net.socket(engine.PULL)
        pull.bind(later.bind_now())
        assert [m[0] for m in await recv_n(pull, 5)] == [b"early-%d" % i for i in range(5)]


@pytest.mark.parametrize("immediate", [0, 1])
@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_immediate_round_robin_skips_unconnected(transport: str, immediate: int) -> None:
    """IMMEDIATE=1 sends only to connected peers; by default an absent peer gets its share."""
    async with network(transport) as net:
        live = net.socket(engine.PULL)
        push = net.socket(engine.PUSH, immediate=immediate)
        push.connect(net.bind(live))
        absent = _unbound_address(net.tmp, transport)
        push.connect(absent.endpoint)
        await until_delivered(push, live, [b"sync"])
        for i in range(10):
            await push.send(b"%d" % i)
        if immediate:
            assert len(await recv_n(live, 10)) == 10
        else:
            assert len(await recv_n(live, 5)) == 5
            await assert_quiet(live, 100)
            late = net.socket(engine.PULL)
            late.bind(absent.bind_now())
            assert len(await recv_n(late, 5)) == 5


# -- LINGER ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_linger_flushes_queue_to_live_peer(transport: str) -> None:
    async with network(transport) as net:
        pull, push = net.socket(engine.PULL), net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        await until_delivered(push, pull, [b"sync"])
        for i in range(500):
            await push.send_multipart([b"%d" % i, b"q" * 1000])
        push.close(linger=5000)
        got = await recv_n(pull, 500, timeout=30)
        assert [int(m[0]) for m in got] == list(range(500))


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_linger_zero_drops_queue(transport: str) -> None:
    """Over a connection only: over inproc what send() took is the peer's already, as in
    libzmq (tests/engine/test_inproc_close_delivers.py)."""
    async with network(transport) as net:
        pull, push = net.socket(engine.PULL), net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        await until_delivered(push, pull, [b"sync"])
        for i in range(500):
            await push.send_multipart([b"%d" % i, b"q" * 1000])
        push.close(linger=0)
        got = 0
        while await pull.poll(300):
            await pull.recv_multipart()
            got += 1
        assert got < 500


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_linger_covers_connection_still_being_made(transport: str) -> None:
    """libzmq keeps trying to deliver for LINGER ms even if the connection is not up yet."""
    async with network(transport) as net:
        pull, push = net.socket(engine.PULL), net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        await push.send(b"sent-right-after-connect")
        push.close(linger=5000)
        assert await recv(pull, timeout=3) == [b"sent-right-after-connect"]


@async_test()
async def test_close_with_linger_gives_up_on_a_silent_peer() -> None:
    """A peer that stops reading holds a closed socket for at most LINGER."""
    async with network("tcp") as net:
        pull = net.socket(engine.PULL, rcvhwm=1)
        ep = net.bind(pull)
        proxy = await Proxy(int(ep.rsplit(":", 1)[1])).start()
        try:
            push = net.socket(engine.PUSH, sndhwm=1)
            push.connect(proxy.endpoint)
            await until_delivered(push, pull, [b"sync"])
            proxy.frozen = True
            await within(fill(push, [BIG]), 60)
            push.close(linger=300)
            await wait_until(lambda: link_count(push) == 0, what="lingering link to give up")
        finally:
            await proxy.stop()


@pytest.mark.parametrize("linger", [-1, 0, 1000])
@async_test()
async def test_close_never_hangs_on_unreachable_peer(linger: int) -> None:
    """close() returns at once; undeliverable messages are given up after LINGER.

    With LINGER=-1 the socket may keep trying in the background (libzmq's term() would wait
    for it), but close() itself still returns at once.
    """
    async with network("tcp") as net:
        # One endpoint refuses connections, one accepts TCP but never speaks ZMTP.
        mute = await AcceptCounter(hold_open=True).start()
        try:
            push = net.socket(engine.PUSH)
            nobody = LaterEndpoint()  # held for the whole test: never bound
            push.connect(nobody.endpoint)
            push.connect(f"tcp://127.0.0.1:{mute.port}")
            await wait_until(lambda: len(mute.accepts) >= 1, what="the mute peer's accept")
            for _ in range(4):
                await push.send(b"undeliverable", engine.DONTWAIT)
            start = time.monotonic()
            push.close(linger=linger)
            assert time.monotonic() - start < 5
            assert push.closed
            with pytest.raises(engine.ZMQError):
                await push.send(b"after-close", engine.DONTWAIT)
            if linger >= 0:
                await wait_until(lambda: link_count(push) == 0, what="lingering to end")
        finally:
            await mute.stop()


# -- MAXMSGSIZE --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@pytest.mark.parametrize(
    "oversized",
    [[b"L" * 5000], [b"f" * 60] * 30],
    ids=["one-big-frame", "many-small-frames"],
)
@async_test()
async def test_oversized_message_closes_only_that_connection(
    transport: str, oversized: list[bytes]
) -> None:
    async with network(transport) as net:
        pull = net.socket(engine.PULL, maxmsgsize=1000)
        ep = net.bind(pull)
        offender, bystander = net.socket(engine.PUSH), net.socket(engine.PUSH)
        offender.connect(ep)
        bystander.connect(ep)
        await until_delivered(offender, pull, [b"sync-o"])
        await until_delivered(bystander, pull, [b"sync-b"])
        assert link_count(pull) == 2
        await offender.send_multipart(oversized)
        await offender.send(b"after-oversized")  # on the doomed connection: lost with it
        await wait_until(lambda: link_count(pull) <= 1, what="the offender to be dropped")
        await bystander.send(b"still-here")
        assert await recv(pull) == [b"still-here"]
        # The offender reconnects, and its later small messages get through again.
        await until_delivered(offender, pull, [b"welcome-back"])
        await bystander.send(b"still-here-2")
        got = await recv(pull)
        while got == [b"welcome-back"]:
            got = await recv(pull)
        assert got == [b"still-here-2"]


@pytest.mark.parametrize("transport", STREAM_TRANSPORTS)
@async_test()
async def test_no_maxmsgsize_by_default(transport: str) -> None:
    async with network(transport) as net:
        pull, push = net.socket(engine.PULL), net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        big = [b"m" * (3 << 20), b"n" * 100]
        await push.send_multipart(big)
        assert await recv(pull, timeout=30) == big
