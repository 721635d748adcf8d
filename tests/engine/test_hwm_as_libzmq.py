"""High-water marks as libzmq keeps them: an inproc connection holds both marks, and a mark
set after connect() bounds the pipes already there.

libzmq joins two inproc sockets with one pipe whose limit is the sum of the two high-water
marks. The engine keeps an outbox per sender and an inbox per receiver, and a sender whose
reader is busy leaves its messages in the outbox (one hand-over per batch): the outbox
filled, and the sender met its SNDHWM, while the reader's inbox still had room. A PUB with
SNDHWM 3 to a SUB with RCVHWM 4 then delivered 4 of a burst where libzmq delivers 7, and a
PUSH took 5 messages without blocking where libzmq takes 6. Each test runs the same lines
against the engine and against libzmq (pyzmq), so it checks libzmq's figure, not a guess.
"""

from __future__ import annotations

from typing import Any

import pytest
from libkit import LIBS, accepted_without_blocking, all_queued, mandatory_router_with_a_dealer

pytestmark = pytest.mark.timeout(60)


@LIBS
@pytest.mark.parametrize("bind_first", [True, False], ids=["bind-first", "connect-first"])
def test_a_push_takes_both_high_water_marks_before_it_blocks(lib: Any, bind_first: bool) -> None:
    ctx = lib.Context()
    try:
        pull = ctx.socket(lib.PULL)
        pull.setsockopt(lib.RCVHWM, 2)
        push = ctx.socket(lib.PUSH)
        push.setsockopt(lib.SNDHWM, 3)
        if bind_first:
            pull.bind("inproc://hwm-sum")
            push.connect("inproc://hwm-sum")
        else:
            push.connect("inproc://hwm-sum")
            pull.bind("inproc://hwm-sum")
            push.getsockopt(lib.EVENTS)  # (libzmq's pipe takes the peer's RCVHWM here)
        assert accepted_without_blocking(push, lib, [b"m"]) == 3 + 2
        assert push.poll(0, lib.POLLOUT) == 0
        assert len(all_queued(pull)) == 5
        assert push.poll(10_000, lib.POLLOUT) == lib.POLLOUT  # read: room again
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_pub_burst_reaches_a_sub_up_to_both_high_water_marks(lib: Any) -> None:
    ctx = lib.Context()
    try:
        pub = ctx.socket(lib.PUB)
        pub.setsockopt(lib.SNDHWM, 3)
        pub.bind("inproc://hwm-pub")
        sub = ctx.socket(lib.SUB)
        sub.setsockopt(lib.RCVHWM, 4)
        sub.setsockopt(lib.SUBSCRIBE, b"")
        sub.connect("inproc://hwm-pub")  # an inproc connect hands the subscription over...
        pub.getsockopt(lib.EVENTS)  # ...and the publisher takes it in here (libzmq)
        for i in range(50):
            pub.send_multipart([b"%d" % i, b"body"])  # a PUB drops what does not fit
        got = all_queued(sub)
        assert got == [[b"%d" % i, b"body"] for i in range(3 + 4)]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_mandatory_router_takes_both_high_water_marks(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router, dealer = mandatory_router_with_a_dealer(lib, ctx, "hwm-router", 2, 3)
        assert accepted_without_blocking(router, lib, [b"d", b"m"]) == 2 + 3
        assert len(all_queued(dealer)) == 5
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_high_water_mark_set_after_connect_bounds_the_pipes_already_there(lib: Any) -> None:
    """libzmq gives a socket's existing pipes a SNDHWM or RCVHWM set after connect(); the
    engine gave it only to pipes made later, so it bounded nothing until a reconnection."""
    ctx = lib.Context()
    try:
        nobody = ctx.socket(lib.PULL)
        nobody.bind("tcp://127.0.0.1:0")
        address = nobody.getsockopt(lib.LAST_ENDPOINT).decode()
        nobody.close(linger=0)  # a port that was free a moment ago: nobody answers there
        waiting = ctx.socket(lib.PUSH)
        waiting.connect(address)  # its pipe queues until a peer answers
        waiting.setsockopt(lib.SNDHWM, 3)
        assert accepted_without_blocking(waiting, lib, [b"m"]) == 3

        pull = ctx.socket(lib.PULL)
        pull.bind("inproc://hwm-later")
        push = ctx.socket(lib.PUSH)
        push.connect("inproc://hwm-later")
        push.getsockopt(lib.EVENTS)
        push.setsockopt(lib.SNDHWM, 2)  # its pipe now holds 2 plus the reader's 1000
        assert accepted_without_blocking(push, lib, [b"m"], limit=5000) == 2 + 1000
    finally:
        ctx.destroy(linger=0)
