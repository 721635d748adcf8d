"""Multipart atomicity, cancelled sends and receives, and polling, over tcp, ipc and inproc."""

from __future__ import annotations

import asyncio

import pytest
from enginekit import TRANSPORTS, async_test, network, recv, within

import engine
from engine.asyncio import Poller

pytestmark = pytest.mark.timeout(90)


# -- multipart atomicity and cancellation ----------------------------------------------------------


def _multipart(i: int) -> list[bytes]:
    """Message i: 1-5 frames, some of them large, each naming its message and position."""
    count = 1 + i % 5
    return [b"%d:%d:" % (i, k) + b"x" * ((i * 7919 + k * 104729) % 70_000) for k in range(count)]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_receiver_never_sees_partial_multipart(transport: str) -> None:
    async with network(transport) as net:
        pull = net.socket(engine.PULL, rcvhwm=5)
        push = net.socket(engine.PUSH, sndhwm=5)
        push.connect(net.bind(pull))
        sender = asyncio.ensure_future(
            asyncio.gather(*[push.send_multipart(_multipart(i)) for i in range(200)])
        )
        for i in range(200):
            if i % 2:
                assert await recv(pull) == _multipart(i)
            else:  # frame by frame, as pyzmq callers often do
                frames = [await within(pull.recv())]
                while pull.rcvmore:
                    frames.append(await within(pull.recv()))
                assert frames == _multipart(i)
        await within(sender)


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_cancelled_recv_loses_nothing(transport: str) -> None:
    async with network(transport) as net:
        pull, push = net.socket(engine.PULL), net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        for n in range(20):
            pending = asyncio.ensure_future(pull.recv_multipart())
            await asyncio.sleep(0)  # let it start waiting
            assert not pending.done()
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            await push.send_multipart([b"msg", b"%d" % n])
            assert await recv(pull) == [b"msg", b"%d" % n]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_cancelled_recv_racing_arrival(transport: str) -> None:
    """Cancel a recv in the same loop pass a message arrives: the message is never lost."""
    async with network(transport) as net:
        pull, push = net.socket(engine.PULL), net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        received: list[bytes] = []
        for n in range(50):
            pending = asyncio.ensure_future(pull.recv())
            await asyncio.sleep(0)
            await push.send(b"%d" % n)
            for _ in range(n % 4):
                await asyncio.sleep(0)
            pending.cancel()
            try:
                received.append(await pending)
            except asyncio.CancelledError:
                received.append(await within(pull.recv()))
        assert received == [b"%d" % n for n in range(50)]


async def _fill(push: engine.asyncio.Socket, frames: list[bytes]) -> int:
    """Send until the socket stays blocked for half a second; returns how many went out."""
    sent = 0
    while True:
        try:
            await push.send_multipart(frames, engine.DONTWAIT)
            sent += 1
            continue
        except engine.Again:
            pass
        if not await push.poll(500, engine.POLLOUT):
            return sent


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_cancelled_send_never_sends_half(transport: str) -> None:
    async with network(transport) as net:
        pull = net.socket(engine.PULL, rcvhwm=2)
        push = net.socket(engine.PUSH, sndhwm=2)
        push.connect(net.bind(pull))
        filler = [b"fill", b"y" * 50_000]
        sent = await within(_fill(push, filler), 60)
        # A whole multipart send blocks, then is cancelled.
        blocked = asyncio.ensure_future(push.send_multipart([b"cancelled", b"1", b"2"]))
        await asyncio.sleep(0)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        # The same through SNDMORE: as in libzmq, the first part waits for room (a message is
        # taken a frame at a time), and a cancelled wait has taken nothing.
        blocked = asyncio.ensure_future(push.send(b"sndmore-a", engine.SNDMORE))
        await asyncio.sleep(0)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        last = asyncio.ensure_future(push.send_multipart([b"last", b"z"]))
        got = []
        while True:
            msg = await recv(pull)
            got.append(msg)
            if msg[0] == b"last":
                break
        await within(last)
        assert got[-1] == [b"last", b"z"]  # no leftover SNDMORE parts glued in front
        fills = [m for m in got if m[0] == b"fill"]
        assert len(fills) == sent and all(m == filler for m in fills)
        for m in got:
            assert m in (filler, [b"cancelled", b"1", b"2"], [b"last", b"z"]), m[:3]


# -- polling --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_poller_over_several_sockets(transport: str) -> None:
    async with network(transport) as net:
        pulls = [net.socket(engine.PULL) for _ in range(3)]
        pushes = [net.socket(engine.PUSH) for _ in range(3)]
        for pull, push in zip(pulls, pushes, strict=True):
            push.connect(net.bind(pull))
        poller = Poller()
        for pull in pulls:
            poller.register(pull, engine.POLLIN)
        assert await poller.poll(100) == []  # times out with nothing ready
        assert await poller.poll(0) == []
        await pushes[1].send(b"one")
        ready = await within(poller.poll(10_000))
        assert ready == [(pulls[1], engine.POLLIN)]
        await pushes[0].send(b"zero")
        await pushes[2].send(b"two")

        async def all_three() -> set[int]:
            while True:
                ready = dict(await poller.poll(10_000))
                if len(ready) == 3:
                    return {pulls.index(s) for s in ready}
                # pulls[1] is ready already, so poll() returns at once: let the loop run.
                await asyncio.sleep(0.005)

        assert await within(all_three()) == {0, 1, 2}
        assert [await recv(p) for p in pulls] == [[b"zero"], [b"one"], [b"two"]]
        assert await poller.poll(50) == []
        poller.unregister(pulls[0])
        poller.register(pushes[0], engine.POLLOUT)
        assert await within(poller.poll(10_000)) == [(pushes[0], engine.POLLOUT)]


@pytest.mark.parametrize("transport", TRANSPORTS)
@async_test()
async def test_poll_waits_for_arrival(transport: str) -> None:
    async with network(transport) as net:
        pull, push = net.socket(engine.PULL), net.socket(engine.PUSH)
        push.connect(net.bind(pull))
        waiter = asyncio.ensure_future(pull.poll(None))
        await asyncio.sleep(0)
        assert not waiter.done()
        await push.send(b"wake")
        assert await within(waiter) == engine.POLLIN
        assert await pull.poll(0) == engine.POLLIN  # polling consumes nothing
        assert await recv(pull) == [b"wake"]


@async_test()
async def test_poll_timeouts() -> None:
    async with network("tcp") as net:
        pull = net.socket(engine.PULL)
        net.bind(pull)
        assert await pull.poll(0) == 0
        assert await pull.poll(50) == 0
        lonely = net.socket(engine.PUSH)  # no peer, nothing to queue for: not writable
        assert await lonely.poll(50, engine.POLLOUT) == 0
        lonely.connect(pull.last_endpoint.decode())  # a queueing pipe now exists
        assert await within(lonely.poll(10_000, engine.POLLOUT)) == engine.POLLOUT
        pull.rcvtimeo = 50
        with pytest.raises(engine.Again):
            await pull.recv()
        with pytest.raises(engine.Again):
            await pull.recv(engine.DONTWAIT)


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_sync_recv_frame_by_frame_between_one_frame_messages(transport: str) -> None:
    """The sync face takes one-frame PULL/SUB messages from the batch itself; the frames left
    of a multipart message must still come first, one recv at a time, and RCVMORE be right."""
    ctx = engine.Context()
    try:
        pull, push = ctx.socket(engine.PULL), ctx.socket(engine.PUSH)
        pull.rcvtimeo = 10_000
        address = "inproc://frame-by-frame" if transport == "inproc" else "tcp://127.0.0.1:0"
        push.connect(pull.bind(address))
        sent: list[list[bytes]] = []
        for i in range(300):
            msg = [b"%d" % i] if i % 3 else [b"%d" % i, b"more", b"last"]
            sent.append(msg)
            push.send_multipart(msg)
        for i, msg in enumerate(sent):
            if i % 6 == 3:
                assert pull.recv_multipart() == msg
                continue
            got = [pull.recv()]
            while pull.getsockopt(engine.RCVMORE):
                got.append(pull.recv())
            assert got == msg
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine, pytest.importorskip("zmq")], ids=["engine", "pyzmq"])
def test_an_option_set_between_the_frames_of_a_message_keeps_their_order(lib: object) -> None:
    """A setsockopt, or a subscription, between recv() calls on the frames of one message:
    the rest of that message still comes next (the engine's sync face took the following
    message first, as the option's change let it take whole messages again)."""
    ctx = lib.Context()  # type: ignore[attr-defined]
    try:
        pull, push = ctx.socket(lib.PULL), ctx.socket(lib.PUSH)  # type: ignore[attr-defined]
        sub, pub = ctx.socket(lib.SUB), ctx.socket(lib.XPUB)  # type: ignore[attr-defined]
        pull.rcvtimeo = sub.rcvtimeo = pub.rcvtimeo = 10_000
        pull.bind("tcp://127.0.0.1:0")
        push.connect(pull.last_endpoint.decode())
        pub.bind("tcp://127.0.0.1:0")
        sub.connect(pub.last_endpoint.decode())
        sub.subscribe(b"")
        assert pub.recv() == b"\x01"  # the subscription is in: what is published arrives
        for sender in (push, pub):
            sender.send_multipart([b"a", b"b"])
            sender.send(b"c")
        for receiver, change in (
            (pull, lambda: setattr(pull, "rcvtimeo", 5_000)),
            (sub, lambda: sub.subscribe(b"other")),
        ):
            assert receiver.poll(10_000)
            first = receiver.recv()
            change()
            assert [first, receiver.recv(), receiver.recv()] == [b"a", b"b", b"c"]
    finally:
        ctx.destroy(linger=0)
