"""`Socket.traffic()`: per-socket message and byte counters (an engine extension the game's
metrics read), counted on the user side of both faces, for every frame of a message."""

from __future__ import annotations

import asyncio

import engine
import engine.asyncio as azmq

TIMEOUT_MS = 10_000


def test_sync_counts_messages_and_bytes_both_ways() -> None:
    ctx = engine.Context()
    try:
        server, client = ctx.socket(engine.ROUTER), ctx.socket(engine.DEALER)
        for sock in (server, client):
            sock.rcvtimeo = TIMEOUT_MS
        before = client.traffic()  # counting starts when asked for: nothing yet
        assert (before.msgs_out, before.bytes_out) == (0, 0)
        client.connect(server.bind("tcp://127.0.0.1:0"))
        seen = server.traffic()
        client.send_multipart([b"ab", b"cdef"])
        peer, *body = server.recv_multipart()
        assert body == [b"ab", b"cdef"]
        server.send_multipart([peer, b"xyz"])
        assert client.recv_multipart() == [b"xyz"]
        assert (before.msgs_out, before.bytes_out, before.msgs_in, before.bytes_in) == (1, 6, 1, 3)
        # The ROUTER's received message includes the routing id frame it prepends.
        assert (seen.msgs_in, seen.bytes_in) == (1, 6 + len(peer))
        assert (seen.msgs_out, seen.bytes_out) == (1, 3 + len(peer))
        assert client.traffic() is before  # one set of counters per socket
    finally:
        ctx.destroy(linger=0)


def test_asyncio_xpub_counts_subscriptions_read_and_events_sent() -> None:
    async def scenario() -> None:
        ctx = azmq.Context()
        try:
            pub, sub = ctx.socket(engine.XPUB), ctx.socket(engine.SUB)
            meter = pub.traffic()
            sub.connect(pub.bind("tcp://127.0.0.1:0"))
            sub.subscribe(b"t")
            assert await asyncio.wait_for(pub.recv_multipart(), 10) == [b"\x01t"]
            await pub.send_multipart([b"t", b"12345"])
            assert await asyncio.wait_for(sub.recv_multipart(), 10) == [b"t", b"12345"]
            assert (meter.msgs_in, meter.bytes_in, meter.msgs_out, meter.bytes_out) == (1, 2, 1, 6)
        finally:
            ctx.destroy(linger=0)

    asyncio.run(scenario())


def test_sync_counts_on_the_inline_paths_of_push_pull_pub_sub() -> None:
    """PUSH send, PULL recv and SUB recv have shortcuts of their own (one call, or none on the
    sync face); metering a socket must still count every message through them."""
    ctx = engine.Context()
    try:
        push, pull = ctx.socket(engine.PUSH), ctx.socket(engine.PULL)
        pub, sub = ctx.socket(engine.PUB), ctx.socket(engine.SUB)
        for sock in (pull, sub):
            sock.rcvtimeo = TIMEOUT_MS
        sent, got = push.traffic(), pull.traffic()
        push.connect(pull.bind("tcp://127.0.0.1:0"))
        for _ in range(3):
            push.send(b"abcd")
        assert [pull.recv() for _ in range(3)] == [b"abcd"] * 3
        assert (sent.msgs_out, sent.bytes_out) == (3, 12)
        assert (got.msgs_in, got.bytes_in) == (3, 12)
        sub.subscribe(b"")
        heard = sub.traffic()
        sub.connect(pub.bind("tcp://127.0.0.1:0"))
        while True:  # until the subscription has reached the publisher
            pub.send(b"xy")
            if sub.poll(50):
                break
        first = sub.recv()
        assert first == b"xy"
        assert heard.msgs_in == 1 and heard.bytes_in == 2
    finally:
        ctx.destroy(linger=0)
