"""Over inproc, a subscription made before a publish counts for that publish, however many
subscribers subscribe in a row: libzmq's inproc pipe holds the subscription by the time
setsockopt returns, and the publisher reads its pipes before it sends.

The engine lost it when the publisher already had a subscription waiting to be read: the
second inproc subscriber then held its subscription back for the publisher's next read
(SocketCore.reader_busy), and the publisher's send read only what had been handed over, so
the first message missed that subscriber (found running pyzmq's own test_log.py on the
engine). Each case runs on both libraries; nothing here sleeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import zmq as pyzmq
import zmq.asyncio as pyzmq_asyncio

import engine
import engine.asyncio
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 10_000
TOPICS = (b"", b"t", b"to", b"")


def subscribe_in_a_row(ctx: Any, lib: Any, endpoint: str) -> list[Any]:
    """One SUB per topic of TOPICS, each connected and subscribed right after the last."""
    subs = []
    for topic in TOPICS:
        sub = ctx.socket(lib.SUB)
        sub.connect(endpoint)
        sub.setsockopt(lib.SUBSCRIBE, topic)
        subs.append(sub)
    return subs


@LIBS
def test_every_subscriber_of_a_row_gets_the_first_message(lib: Any) -> None:
    ctx = lib.Context()
    try:
        pub = ctx.socket(lib.PUB)
        pub.bind(f"inproc://row-{id(ctx)}")
        subs = subscribe_in_a_row(ctx, lib, f"inproc://row-{id(ctx)}")
        pub.send(b"topic")
        assert [sub.poll(WAIT_MS) for sub in subs] == [lib.POLLIN] * len(subs)
        assert [sub.recv() for sub in subs] == [b"topic"] * len(subs)
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_an_xpub_shows_every_subscription_of_a_row(lib: Any) -> None:
    ctx = lib.Context()
    try:
        xpub = ctx.socket(lib.XPUB)
        xpub.setsockopt(lib.XPUB_VERBOSE, 1)
        xpub.bind(f"inproc://xrow-{id(ctx)}")
        _held = subscribe_in_a_row(ctx, lib, f"inproc://xrow-{id(ctx)}")  # kept open
        xpub.setsockopt(lib.RCVTIMEO, WAIT_MS)
        assert sorted(xpub.recv() for _ in TOPICS) == sorted(b"\x01" + t for t in TOPICS)
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize(
    "lib, alib", [(engine, engine.asyncio), (pyzmq, pyzmq_asyncio)], ids=["engine", "pyzmq"]
)
def test_the_asyncio_face_too(lib: Any, alib: Any) -> None:
    async def main() -> list[bytes]:
        ctx = alib.Context()
        try:
            pub = ctx.socket(lib.PUB)
            pub.bind(f"inproc://arow-{id(ctx)}")
            subs = subscribe_in_a_row(ctx, lib, f"inproc://arow-{id(ctx)}")
            await pub.send(b"topic")
            return await asyncio.wait_for(
                asyncio.gather(*(sub.recv() for sub in subs)), WAIT_MS / 1000
            )
        finally:
            ctx.destroy(linger=0)

    assert asyncio.run(main()) == [b"topic"] * len(TOPICS)
