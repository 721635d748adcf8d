"""A message given a frame at a time waits for room at its first frame, as in libzmq.

libzmq takes a message a frame at a time: a socket with no room for it blocks, or raises
Again, at the first frame given with SNDMORE, and has taken nothing then. The engine took
every SNDMORE frame at once and failed at the last, with the earlier frames lost: a program
that retried the last frame after Again sent half a message. Each test runs the same lines
against the engine and against libzmq (pyzmq).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from libkit import (
    LIBS,
    WAIT_MS,
    accepted_without_blocking,
    all_queued,
    mandatory_router_with_a_dealer,
)

pytestmark = pytest.mark.timeout(60)


def _refused_at_first_frame(sock: Any, lib: Any, first: bytes) -> None:
    with pytest.raises(lib.Again):
        sock.send(first, lib.SNDMORE | lib.DONTWAIT)
    sock.setsockopt(lib.SNDTIMEO, 50)
    with pytest.raises(lib.Again):
        sock.send(first, lib.SNDMORE)
    sock.setsockopt(lib.SNDTIMEO, -1)


@LIBS
@pytest.mark.parametrize("kind", ["PUSH", "DEALER", "PAIR"])
def test_a_full_socket_refuses_the_first_frame_and_keeps_nothing(lib: Any, kind: str) -> None:
    ctx = lib.Context()
    try:
        reader = ctx.socket({"PUSH": lib.PULL, "DEALER": lib.DEALER, "PAIR": lib.PAIR}[kind])
        reader.setsockopt(lib.RCVHWM, 1)
        reader.bind(f"inproc://first-{kind}")
        writer = ctx.socket(getattr(lib, kind))
        writer.setsockopt(lib.SNDHWM, 1)
        writer.connect(f"inproc://first-{kind}")
        assert accepted_without_blocking(writer, lib, [b"fill"]) == 2
        _refused_at_first_frame(writer, lib, b"half")
        assert all_queued(reader) == [[b"fill"], [b"fill"]]
        writer.send(b"whole", lib.SNDMORE)  # room again: nothing was kept of "half"
        writer.send(b"message")
        assert reader.poll(WAIT_MS) and reader.recv_multipart() == [b"whole", b"message"]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_socket_with_no_peer_refuses_the_first_frame(lib: Any) -> None:
    ctx = lib.Context()
    try:
        push = ctx.socket(lib.PUSH)
        push.bind("tcp://127.0.0.1:0")  # a bound socket queues for nobody
        _refused_at_first_frame(push, lib, b"first")
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_blocked_first_frame_goes_once_the_reader_makes_room(lib: Any) -> None:
    ctx = lib.Context()
    try:
        pull = ctx.socket(lib.PULL)
        pull.setsockopt(lib.RCVHWM, 1)
        pull.bind("inproc://first-blocked")
        push = ctx.socket(lib.PUSH)
        push.setsockopt(lib.SNDHWM, 1)
        push.connect("inproc://first-blocked")
        assert accepted_without_blocking(push, lib, [b"fill"]) == 2
        taken = threading.Event()

        def send_in_two_frames() -> None:
            push.send(b"a", lib.SNDMORE)
            taken.set()
            push.send(b"b")

        sender = threading.Thread(target=send_in_two_frames)
        sender.start()
        assert not taken.wait(0.2), "the first frame was taken with no room for it"
        got = []
        while len(got) < 3 and pull.poll(WAIT_MS):  # reading makes room
            got.append(pull.recv_multipart())
        sender.join(WAIT_MS / 1000)
        assert taken.is_set() and got == [[b"fill"], [b"fill"], [b"a", b"b"]]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_mandatory_router_refuses_the_first_frame_for_a_full_peer(lib: Any) -> None:
    ctx = lib.Context()
    try:
        router, _ = mandatory_router_with_a_dealer(lib, ctx, "first-router", 1, 1)
        assert accepted_without_blocking(router, lib, [b"d", b"fill"]) == 2
        _refused_at_first_frame(router, lib, b"d")
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_an_xpub_nodrop_refuses_the_first_frame_of_a_topic_whose_subscriber_is_full(
    lib: Any,
) -> None:
    ctx = lib.Context()
    try:
        xpub = ctx.socket(lib.XPUB)
        xpub.setsockopt(lib.XPUB_NODROP, 1)
        xpub.setsockopt(lib.SNDHWM, 1)
        xpub.bind("inproc://first-xpub")
        sub = ctx.socket(lib.SUB)
        sub.setsockopt(lib.RCVHWM, 1)
        sub.setsockopt(lib.SUBSCRIBE, b"full")
        sub.connect("inproc://first-xpub")
        assert xpub.poll(WAIT_MS) and xpub.recv() == b"\x01full"
        assert accepted_without_blocking(xpub, lib, [b"full", b"fill"]) == 2
        _refused_at_first_frame(xpub, lib, b"full")
        xpub.send(b"other", lib.SNDMORE | lib.DONTWAIT)  # nobody's topic: room enough
        xpub.send(b"topic", lib.DONTWAIT)
    finally:
        ctx.destroy(linger=0)
