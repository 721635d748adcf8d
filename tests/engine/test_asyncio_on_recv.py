"""The asyncio face's on_recv: each message goes to a callback in the loop pass that read it,
in order, none lost or handed twice; a failing callback costs its message only; send_multipart_now
queues at once or raises; on_recv(None) gives the messages back to recv."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import engine
import engine.asyncio as ezmq

TIMEOUT_S = 10.0


async def _until(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), TIMEOUT_S)


def _run_with_context(main: Callable[[ezmq.Context], Awaitable[None]]) -> None:
    """Run ``main`` with a fresh context, destroyed afterwards whether it passed or not."""

    async def run() -> None:
        ctx = ezmq.Context()
        try:
            await main(ctx)
        finally:
            ctx.destroy(linger=0)

    asyncio.run(run())


def _connected(ctx: ezmq.Context, bound: int, connecting: int) -> tuple[ezmq.Socket, ezmq.Socket]:
    """A socket bound to a free tcp port, and one connected to it."""
    server = ctx.socket(bound)
    client = ctx.socket(connecting)
    client.connect(server.bind("tcp://127.0.0.1:0"))
    return server, client


def test_every_message_reaches_the_callback_in_order_even_those_sent_before() -> None:
    """1,000 messages from a DEALER over tcp, the first 100 of them queued at the ROUTER before
    on_recv is set: all 1,000 reach the callback, in order, each once."""

    async def main(ctx: ezmq.Context) -> None:
        router, dealer = _connected(ctx, engine.ROUTER, engine.DEALER)
        for i in range(100):
            await dealer.send(b"%d" % i)
        assert await router.poll(TIMEOUT_S * 1000)  # the first is in: on_recv must take it
        got: list[bytes] = []
        done = asyncio.Event()

        def take(frames: list[bytes]) -> None:
            assert len(frames) == 2  # routing id, body
            got.append(frames[1])
            if len(got) == 1000:
                done.set()

        router.on_recv(take)
        for i in range(100, 1000):
            await dealer.send(b"%d" % i)
        await _until(done)
        assert got == [b"%d" % i for i in range(1000)]

    _run_with_context(main)


def test_an_echo_server_in_a_callback_answers_every_request() -> None:
    """A ROUTER that answers from its callback with send_multipart_now: 500 REQ round trips."""

    async def main(ctx: ezmq.Context) -> None:
        router, req = _connected(ctx, engine.ROUTER, engine.REQ)
        router.on_recv(lambda frames: router.send_multipart_now([*frames[:-1], frames[-1] * 2]))
        for i in range(500):
            await req.send(b"%d" % i)
            assert await asyncio.wait_for(req.recv(), TIMEOUT_S) == b"%d" % i * 2

    _run_with_context(main)


def test_a_failing_callback_costs_its_message_and_nothing_else() -> None:
    """The callback raises on every third message: the loop's exception handler hears of each,
    the connection stays up, and every other message is handed on."""

    async def main(ctx: ezmq.Context) -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        pull, push = _connected(ctx, engine.PULL, engine.PUSH)
        got: list[int] = []
        done = asyncio.Event()

        def take(frames: list[bytes]) -> None:
            n = int(frames[0])
            if n == 299:
                done.set()
            if n % 3 == 0:
                raise ValueError(f"no {n}")
            got.append(n)

        pull.on_recv(take)
        for i in range(300):
            await push.send(b"%d" % i)
        await _until(done)
        assert got == [i for i in range(300) if i % 3]
        assert len(reported) == 100
        assert all(isinstance(r["exception"], ValueError) for r in reported)

    _run_with_context(main)


def test_on_recv_none_gives_messages_back_to_recv() -> None:
    async def main(ctx: ezmq.Context) -> None:
        pull, push = _connected(ctx, engine.PULL, engine.PUSH)
        first = asyncio.Event()
        got: list[bytes] = []

        def take(frames: list[bytes]) -> None:
            got.append(frames[0])
            first.set()

        pull.on_recv(take)
        await push.send(b"one")
        await _until(first)
        pull.on_recv(None)
        await push.send(b"two")
        assert await asyncio.wait_for(pull.recv(), TIMEOUT_S) == b"two"
        assert got == [b"one"]

    _run_with_context(main)


def test_ping_pong_inside_callbacks_neither_nests_nor_reorders() -> None:
    """Two PAIRs over inproc, each answering from its callback and flushing at once (as a face
    about to wait does), so the answer is delivered while the callback still runs: that
    delivery waits for the running turn (no recursion, which 5,000 exchanges would overflow),
    and the exchanges run in order."""

    async def main(ctx: ezmq.Context) -> None:
        a = ctx.socket(engine.PAIR)
        a.bind("inproc://ping-pong")
        b = ctx.socket(engine.PAIR)
        b.connect("inproc://ping-pong")
        seen: list[int] = []
        done = asyncio.Event()

        def answer(sock: ezmq.Socket, n: int) -> None:
            sock.send_multipart_now([b"%d" % n])
            sock._core.flush()

        def at_a(frames: list[bytes]) -> None:
            n = int(frames[0])
            seen.append(n)
            if n >= 5000:
                done.set()
            else:
                answer(a, n + 1)

        b.on_recv(lambda frames: answer(b, int(frames[0]) + 1))
        a.on_recv(at_a)
        answer(b, 0)  # the connecting side queues until the pipes attach on the loop
        await _until(done)
        assert seen == list(range(0, 5001, 2))

    _run_with_context(main)


def test_send_multipart_now_and_on_recv_refuse_what_they_cannot_do() -> None:
    async def main(ctx: ezmq.Context) -> None:
        dealer = ctx.socket(engine.DEALER)  # no peer at all: nowhere to queue
        with pytest.raises(engine.Again):
            dealer.send_multipart_now([b"x"])
        router = ctx.socket(engine.ROUTER)
        router.setsockopt(engine.ROUTER_MANDATORY, 1)
        router.bind("tcp://127.0.0.1:0")
        with pytest.raises(engine.ZMQError) as unknown:
            router.send_multipart_now([b"nobody", b"x"])
        assert unknown.value.errno == engine.EHOSTUNREACH
        with pytest.raises(engine.ZMQError) as empty:
            router.send_multipart_now([])
        assert empty.value.errno == engine.EINVAL
        router.close(0)
        with pytest.raises(engine.ZMQError) as closed:
            router.send_multipart_now([b"nobody", b"x"])
        assert closed.value.errno == engine.ENOTSOCK
        with pytest.raises(engine.ZMQError) as closed:
            router.on_recv(print)
        assert closed.value.errno == engine.ENOTSOCK
        router.on_recv(None)  # stopping is always fine
        draft = ctx.socket(engine.SERVER)
        with pytest.raises(engine.ZMQError) as draft_type:
            draft.on_recv(print)
        assert draft_type.value.errno == engine.ENOTSUP

    _run_with_context(main)


def test_on_recv_batch_hands_over_what_one_read_brought_together() -> None:
    """200 messages queued in one pass and written together reach a batch callback in lists
    (more than one message in some), all of them, in order, each once."""

    async def main(ctx: ezmq.Context) -> None:
        pull, push = _connected(ctx, engine.PULL, engine.PUSH)
        await push.send(b"-1")
        assert await asyncio.wait_for(pull.recv(), TIMEOUT_S) == b"-1"  # connected
        batches: list[list[list[bytes]]] = []
        done = asyncio.Event()

        def take(msgs: list[list[bytes]]) -> None:
            batches.append(msgs)
            if msgs[-1] == [b"199"]:
                done.set()

        pull.on_recv_batch(take)
        for i in range(200):
            push.send_multipart_now([b"%d" % i])
        await _until(done)
        assert [m for batch in batches for m in batch] == [[b"%d" % i] for i in range(200)]
        assert max(len(batch) for batch in batches) > 1

    _run_with_context(main)


def test_an_xpub_callback_hears_a_departed_subscribers_unsubscription() -> None:
    """A subscriber leaves without unsubscribing: the XPUB's callback gets the cancellation of
    its topic at once, as a recv would, not only when some later message arrives."""

    async def main(ctx: ezmq.Context) -> None:
        xpub, sub = _connected(ctx, engine.XPUB, engine.SUB)
        got: list[bytes] = []
        subscribed, cancelled = asyncio.Event(), asyncio.Event()

        def take(frames: list[bytes]) -> None:
            got.append(frames[0])
            (subscribed if frames[0][:1] == b"\x01" else cancelled).set()

        xpub.on_recv(take)
        sub.subscribe(b"room")
        await _until(subscribed)
        sub.close(linger=0)
        await _until(cancelled)
        assert got == [b"\x01room", b"\x00room"]

    _run_with_context(main)


def test_a_failed_future_takes_the_first_exception_instead_of_the_loop() -> None:
    """With ``failed``, the callback's first exception ends up there (a server awaiting it
    ends with its handler's bug), the loop's handler hears nothing, and the next messages are
    still handed on."""

    async def main(ctx: ezmq.Context) -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        pull, push = _connected(ctx, engine.PULL, engine.PUSH)
        failed: asyncio.Future[None] = loop.create_future()
        got: list[bytes] = []
        last = asyncio.Event()

        def take(frames: list[bytes]) -> None:
            if frames[0] == b"last":
                last.set()
                return
            if frames[0].startswith(b"bad"):
                raise ValueError(frames[0].decode())
            got.append(frames[0])

        pull.on_recv(take, failed)
        for body in (b"one", b"bad 1", b"two", b"bad 2", b"last"):
            await push.send(body)
        await _until(last)
        with pytest.raises(ValueError, match="bad 1"):
            failed.result()
        assert got == [b"one", b"two"]
        assert reported == []

    _run_with_context(main)
