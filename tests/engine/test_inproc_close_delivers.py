"""Over inproc, every message send() took reaches the peer after the sender closes, whatever
its LINGER, as in libzmq: there the pipe is the peer's own queue, drained up to the closing
delimiter, so LINGER has nothing left to drop.

The engine kept some in the sender's outbox for the loop's next flush: LINGER 0 dropped them
(a PAIR that sent 50 and closed had 2 delivered, at random), and any other LINGER moved one
flush's worth (16,384) and dropped the rest, so a PUSH with SNDHWM 0 that sent 20,000 to a
PULL with RCVHWM 10 had 16,394 delivered (10 with LINGER 0), where libzmq's delivers all.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS

pytestmark = pytest.mark.timeout(120)

#: sender type -> receiver type; the receiver binds, the sender connects.
PAIRS = {"PUSH": "PULL", "PAIR": "PAIR", "DEALER": "ROUTER"}


def _received_after_close(sender: Any, receiver: Any, count: int) -> list[bytes]:
    """Send `count` numbered messages, close the sender, and read what the receiver has."""
    for n in range(count):
        sender.send(b"%d" % n)
    sender.close()
    got = []
    while receiver.poll(500 if got else WAIT_MS):
        got.append(receiver.recv_multipart()[-1])  # a ROUTER's first frame is the peer's id
    return got


@LIBS
@pytest.mark.parametrize("kind", sorted(PAIRS))
@pytest.mark.parametrize("linger", [0, 100, -1])
def test_what_was_sent_arrives_after_close(lib: Any, kind: str, linger: int) -> None:
    ctx = lib.Context()
    try:
        receiver = ctx.socket(getattr(lib, PAIRS[kind]))
        receiver.bind(f"inproc://close-delivers-{kind}-{linger}")
        sender = ctx.socket(getattr(lib, kind))
        sender.setsockopt(lib.LINGER, linger)
        sender.connect(f"inproc://close-delivers-{kind}-{linger}")
        got = _received_after_close(sender, receiver, 50)
        assert got == [b"%d" % n for n in range(50)]
    finally:
        ctx.destroy(0)


@LIBS
@pytest.mark.parametrize("linger", [0, -1])
def test_more_than_one_flush_arrives_past_the_peers_hwm(lib: Any, linger: int) -> None:
    ctx = lib.Context()
    try:
        receiver = ctx.socket(lib.PULL)
        receiver.setsockopt(lib.RCVHWM, 10)
        receiver.bind(f"inproc://close-delivers-many-{linger}")
        sender = ctx.socket(lib.PUSH)
        sender.setsockopt(lib.SNDHWM, 0)  # no limit: send() never blocks
        sender.setsockopt(lib.LINGER, linger)
        sender.connect(f"inproc://close-delivers-many-{linger}")
        got = _received_after_close(sender, receiver, 20_000)
        assert len(got) == 20_000
        assert got[-1] == b"19999"
    finally:
        ctx.destroy(0)
