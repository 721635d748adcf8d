"""The client's per-topic sequencing (no I/O): order, duplicates, gaps, notices, lost events;
and the broadcast framing it relies on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.session import TopicTrack
from gameserver.broadcast import (
    Notice,
    decode_publication,
    marks,
    publication_frames,
    wire_topic,
)
from gameserver.protocol import Event, ProtocolError
from gameserver.topics import private_topic

TOPIC = "room.hall"


def ev(seq: int, topic: str = TOPIC) -> Event:
    return Event(topic=topic, seq=seq, kind="say", text=f"line {seq}", ts=0.0)


def seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


def test_in_order_and_duplicates() -> None:
    track = TopicTrack(TOPIC, cursor=3, wanted=3)
    assert seqs(track.offer(ev(4))) == [4]
    assert track.offer(ev(4)) == [] and track.offer(ev(2)) == []  # replays are dropped
    assert not track.needs_repair


def test_gap_is_held_then_repaired() -> None:
    track = TopicTrack(TOPIC, cursor=1, wanted=1)
    assert track.offer(ev(4)) == []
    assert track.needs_repair and track.wanted == 4
    assert seqs(track.repaired([ev(2), ev(3), ev(4)], truncated=False, asked_upto=4)) == [2, 3, 4]
    assert track.cursor == 4 and not track.held and track.lost == 0


def test_events_gone_from_the_log_are_skipped_and_counted() -> None:
    track = TopicTrack(TOPIC, cursor=1, wanted=1)
    track.offer(ev(9))
    assert seqs(track.repaired([ev(7), ev(8)], truncated=True, asked_upto=9)) == [7, 8, 9]
    assert track.lost == 5 and track.cursor == 9


def test_notices_ask_for_content() -> None:
    track = TopicTrack(private_topic("token" * 4), cursor=0)
    track.notice(2)
    assert track.needs_repair
    got = track.repaired([ev(1, track.topic), ev(2, track.topic)], False, asked_upto=2)
    assert seqs(got) == [1, 2] and not track.needs_repair


def test_unknown_cursor_holds_until_history() -> None:
    track = TopicTrack(TOPIC)
    assert track.offer(ev(11)) == [] and not track.needs_repair
    assert seqs(track.start_after_history([ev(9), ev(10)])) == [11]


@given(st.permutations(list(range(1, 30))), st.sets(st.integers(1, 29)))
def test_any_arrival_order_delivers_each_once_in_order(order: list[int], missing: set[int]) -> None:
    track = TopicTrack(TOPIC, cursor=0)
    out = []
    for seq in order:
        if seq not in missing:
            out += track.offer(ev(seq))
    log = [ev(s) for s in range(1, 30)]
    out += track.repaired([e for e in log if e.seq > (track.cursor or 0)], False, track.wanted)
    assert seqs(out) == list(range(1, 30))


def test_wire_topics_never_match_a_longer_name() -> None:
    inn, loft = wire_topic("room.inn"), wire_topic("room.inn_loft")
    assert not loft.startswith(inn)  # PUB/SUB matches prefixes


def test_private_publications_carry_no_content() -> None:
    topic = private_topic("x" * 20)
    secret = Event(topic=topic, seq=5, kind="whisper", text="swordfish", ts=0.0)
    public = ev(7)
    frames = publication_frames([secret, public])
    assert b"swordfish" not in b"".join(frames)
    assert len(frames) == 2  # one frame per event
    assert decode_publication(frames[0]) == Notice(topic=topic, seq=5)
    assert decode_publication(frames[1]) == public
    assert frames[1].startswith(wire_topic(TOPIC))  # what a subscription to the room matches
    assert marks([secret, public]) == {TOPIC: 7}  # the requester learns no private seq
    payload = frames[1].removeprefix(wire_topic(TOPIC))
    with pytest.raises(ProtocolError):
        decode_publication(wire_topic("room.other") + payload)  # topic mismatch
    for bad in (b"", b"\x00" + payload, b"room.inn" + payload, b"room.\xff\x00" + payload):
        with pytest.raises(ProtocolError):
            decode_publication(bad)
