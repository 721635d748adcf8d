"""Subscriptions inside messages of several frames, XSUB to XPUB, against both libraries.

libzmq reads what an XSUB sends a frame at a time: every frame that begins with 0x01 or 0x00
is a subscription or a cancel, whatever its place in the message. The engine took a message
of several frames whole, as data: its XPUB subscribed its peer to nothing and showed the
message as it came.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS, all_queued

TOPICS = [b"xyz", b"two", b"a", b"b", b"s", b"e", b"dup"]

#: What the XSUB sends; what its XPUB shows; the topics the XSUB then hears.
CASES = [
    ([b"hello", b"\x01xyz"], [[b"hello", b"\x01xyz"]], [b"xyz"]),
    ([b"\x01two", b"more"], [[b"\x01two"], [b"more"]], [b"two"]),
    ([b"\x01a", b"\x01b"], [[b"\x01a"], [b"\x01b"]], [b"a", b"b"]),
    ([b"\x01a", b"\x00a"], [[b"\x01a"], [b"\x00a"]], []),
    ([b"u1", b"\x01s", b"u2"], [[b"u1", b"\x01s"], [b"u2"]], [b"s"]),
    ([b"u1", b"u2"], [[b"u1", b"u2"]], []),
    ([b"", b"\x01e"], [[b"", b"\x01e"]], [b"e"]),
]


def _pair(lib: Any, ctx: Any) -> tuple[Any, Any]:
    xpub = ctx.socket(lib.XPUB)
    xpub.bind("tcp://127.0.0.1:0")
    xsub = ctx.socket(lib.XSUB)
    xsub.connect(xpub.getsockopt(lib.LAST_ENDPOINT).decode())
    return xpub, xsub


def _heard(lib: Any, xpub: Any, xsub: Any) -> list[bytes]:
    """The topics of TOPICS the XSUB hears now, marked off by a last one it subscribed to."""
    xsub.send(b"\x01end")
    assert xpub.poll(WAIT_MS) and xpub.recv_multipart() == [b"\x01end"]
    for topic in TOPICS:
        xpub.send(topic + b"!")
    xpub.send(b"end")
    heard = []
    while xsub.poll(WAIT_MS):
        got = xsub.recv()
        if got == b"end":
            return heard
        heard.append(got[:-1])
    raise AssertionError(f"the mark never came; heard {heard}")


@LIBS
@pytest.mark.parametrize(("frames", "shown", "topics"), CASES)
def test_each_frame_of_a_message_may_subscribe(
    lib: Any, frames: list[bytes], shown: list[list[bytes]], topics: list[bytes]
) -> None:
    ctx = lib.Context()
    try:
        xpub, xsub = _pair(lib, ctx)
        xsub.send_multipart(frames)
        got = [xpub.recv_multipart() for _ in shown if xpub.poll(WAIT_MS)]
        assert got == shown
        assert _heard(lib, xpub, xsub) == topics
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_subscription_already_held_is_not_shown_again_inside_a_message(lib: Any) -> None:
    ctx = lib.Context()
    try:
        xpub, xsub = _pair(lib, ctx)
        xsub.send(b"\x01dup")
        assert xpub.poll(WAIT_MS) and xpub.recv_multipart() == [b"\x01dup"]
        xsub.send_multipart([b"\x01dup", b"tail"])
        assert xpub.poll(WAIT_MS) and xpub.recv_multipart() == [b"tail"]
        assert all_queued(xpub) == []
    finally:
        ctx.destroy(linger=0)
