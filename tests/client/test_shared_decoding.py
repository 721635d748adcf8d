"""One decoding of each publication for the many players of a load generator's process."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_client_core import HALL, event, logged_in, mutated

from client.shared_decoding import MAX_REMEMBERED_BYTES, SharedDecoding
from gameserver.broadcast import decode_publication, notice_bytes, wire_topic
from gameserver.protocol import Event, Notice, ProtocolError, encode


def frame_of(seq: int, topic: str = HALL) -> bytes:
    return wire_topic(topic) + encode(event(seq, topic))


class Counted:
    """The real decoder, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: bytes) -> Event | Notice:
        self.calls += 1
        return decode_publication(frame)


def test_players_of_one_process_share_one_decoding_of_each_event() -> None:
    decoder = Counted()
    shared = SharedDecoding(decode=decoder)
    players = [logged_in(decode=shared.decode)[0] for _ in range(3)]
    for seq in (4, 5):
        wire = frame_of(seq)
        for core in players:
            # Each player's SUB hands over its own copy of the bytes, as a socket does.
            core.receive_publication([bytes(bytearray(wire))], 1.0)
    delivered = [core.take().events for core in players]
    assert [e.seq for e in delivered[0]] == [4, 5]
    assert all(events == delivered[0] for events in delivered)
    assert all(
        a is b for events in delivered[1:] for a, b in zip(events, delivered[0], strict=True)
    )
    assert decoder.calls == 2 and shared.hits == 4


def test_the_memo_is_bounded_and_forgets_the_oldest_first() -> None:
    decoder = Counted()
    shared = SharedDecoding(entries=3, decode=decoder)
    for seq in range(1, 6):
        shared.decode(frame_of(seq))
    assert len(shared) == 3 and decoder.calls == 5
    shared.decode(frame_of(5))  # still remembered
    assert decoder.calls == 5
    shared.decode(frame_of(1))  # forgotten: decoded again
    assert decoder.calls == 6 and len(shared) == 3
    with pytest.raises(ValueError):
        SharedDecoding(entries=0)


def test_what_does_not_decode_is_refused_every_time_and_never_remembered() -> None:
    decoder = Counted()
    shared = SharedDecoding(decode=decoder)
    bad = wire_topic("room.other") + encode(event(1))  # the payload's topic is not the wire's
    for _ in range(2):
        with pytest.raises(ProtocolError):
            shared.decode(bad)
    assert decoder.calls == 2 and len(shared) == 0
    good = frame_of(2)
    assert shared.decode(bytearray(good)) == decode_publication(good)  # unhashable: decoded
    assert len(shared) == 0


def test_a_large_frame_is_decoded_every_time_and_never_remembered() -> None:
    decoder = Counted()
    shared = SharedDecoding(decode=decoder)
    large = Event(topic=HALL, seq=1, kind="say", text="hi", data={"message": "x" * 3000}, ts=0.0)
    wire = wire_topic(HALL) + encode(large)
    assert len(wire) > MAX_REMEMBERED_BYTES
    assert shared.decode(wire) == shared.decode(wire) == large
    assert decoder.calls == 2 and len(shared) == 0 and shared.hits == 0


wire_frames = (
    st.binary(max_size=64)
    | st.builds(frame_of, st.integers(1, 10**6))
    | st.builds(lambda seq: wire_topic(HALL) + notice_bytes(event(seq)), st.integers(1, 99))
    | st.builds(lambda body: wire_topic(HALL) + body, mutated())
)


@settings(max_examples=300)
@given(st.lists(wire_frames, min_size=1, max_size=8))
def test_fuzz_shared_decoding_answers_as_the_decoder_does(frames: list[bytes]) -> None:
    shared = SharedDecoding(entries=4)
    for frame in [*frames, *frames]:  # the second time round, from the memo where remembered
        try:
            expected: Event | Notice | str = decode_publication(frame)
        except ProtocolError as exc:
            expected = exc.code
        try:
            got: Event | Notice | str = shared.decode(frame)
        except ProtocolError as exc:
            got = exc.code
        assert got == expected
