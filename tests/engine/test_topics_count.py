"""TOPICS_COUNT, compared with libzmq 4.3.5 (pyzmq), which answers it: the distinct topics a
SUB or XSUB has subscribed, or the subscribers of a PUB or XPUB hold. The engine had no such
option (AttributeError; EINVAL by number). One difference is kept on purpose: after a
subscriber leaves, libzmq goes on counting its topics; the engine does not."""

from __future__ import annotations

from typing import Any

import pytest

import engine
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)


@LIBS
def test_a_publisher_counts_its_subscribers_distinct_topics(lib: Any) -> None:
    ctx = lib.Context()
    try:
        xpub = ctx.socket(lib.XPUB)
        xpub.setsockopt(lib.XPUB_VERBOSE, 1)
        xpub.bind("tcp://127.0.0.1:0")
        endpoint = xpub.getsockopt(lib.LAST_ENDPOINT).decode()
        assert xpub.getsockopt(lib.TOPICS_COUNT) == 0
        subs = [ctx.socket(lib.SUB) for _ in range(3)]
        wanted = [[b"a", b"b"], [b"a"], [b"", b"ab"]]
        for sub, topics in zip(subs, wanted, strict=True):
            for topic in topics:
                sub.setsockopt(lib.SUBSCRIBE, topic)
            sub.connect(endpoint)
        xpub.rcvtimeo = 10_000
        for _ in range(sum(map(len, wanted))):  # every subscription read, as libzmq reads them
            xpub.recv()
        # a, b, "" and ab: the second "a" is the same topic.
        assert xpub.getsockopt(lib.TOPICS_COUNT) == 4
        assert [sub.getsockopt(lib.TOPICS_COUNT) for sub in subs] == [2, 1, 2]
        for sub in subs[:2]:  # "a" and "b" have nobody left
            sub.close(linger=0)
        assert sorted(xpub.recv() for _ in range(2)) == [b"\x00a", b"\x00b"]
        # The engine counts what is held; libzmq 4.3.5 drops a departed subscriber's topics
        # and says so (the two cancels above) but does not lower its count (its trie's
        # counter falls on an UNSUBSCRIBE only): the one difference, on purpose.
        assert xpub.getsockopt(lib.TOPICS_COUNT) == (2 if lib is engine else 4)
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_subscriber_counts_its_own_topics_once_each(lib: Any) -> None:
    ctx = lib.Context()
    try:
        sub = ctx.socket(lib.SUB)
        sub.setsockopt(lib.SUBSCRIBE, b"a")
        sub.setsockopt(lib.SUBSCRIBE, b"a")
        sub.setsockopt(lib.SUBSCRIBE, b"b")
        assert sub.getsockopt(lib.TOPICS_COUNT) == 2
        sub.setsockopt(lib.UNSUBSCRIBE, b"a")  # one of two references
        assert sub.getsockopt(lib.TOPICS_COUNT) == 2
        sub.setsockopt(lib.UNSUBSCRIBE, b"a")
        assert sub.getsockopt(lib.TOPICS_COUNT) == 1
        for kind in (lib.PUB, lib.XSUB):
            assert ctx.socket(kind).getsockopt(lib.TOPICS_COUNT) == 0
        dealer = ctx.socket(lib.DEALER)
        with pytest.raises(lib.ZMQError) as exc:
            dealer.getsockopt(lib.TOPICS_COUNT)
        assert exc.value.errno == lib.EINVAL
        with pytest.raises(lib.ZMQError) as exc:
            sub.setsockopt(lib.TOPICS_COUNT, 1)  # read-only
        assert exc.value.errno == lib.EINVAL
    finally:
        ctx.destroy(linger=0)
