"""The fair-queue on its own: batches whose one-frame messages come bare (as bytes)."""

from __future__ import annotations

from engine.pipe import FlushQueue, Pipe
from engine.sockets.parts import FairQueue


def _pipe() -> Pipe:
    return Pipe(0, 0, FlushQueue(lambda *a: None, same_thread=True))


def test_take_hands_out_lists_for_bare_frames() -> None:
    inbox = FairQueue()
    first, second = _pipe(), _pipe()
    inbox.deliver(first, [b"a", [b"b", b"c"], b"", [b"d"]])
    inbox.deliver(second, [b"e"])
    got = [inbox.take() for _ in range(5)]
    assert got == [[b"a"], [b"b", b"c"], [b""], [b"d"], [b"e"]]
    assert inbox.take() is None
    assert first.delivered == 4 and first.consumed == 4  # credited when its batch ended
    assert inbox.pipe is None and second.consumed == 1


def test_conflate_keeps_the_newest_bare_frame() -> None:
    inbox = FairQueue()
    pipe = _pipe()
    inbox.replace(pipe, [b"old", b"older"])
    inbox.replace(pipe, [[b"x", b"y"], b"newest"])
    assert inbox.take() == [b"newest"]
    assert inbox.take() is None
