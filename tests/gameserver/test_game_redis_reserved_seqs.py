"""Event seqs reserved in a Redis batch (Tx.reserve): numbered by the commit script, so two
workers saying things in one room do not refuse each other's batches, and every copy of an
event (the answer's frames, the log, the action's record) carries the number it was given.
Against a real redis-server; the placeholder rewriting is fuzzed with hypothesis."""

from __future__ import annotations

import uuid

import orjson
from gamekit import FAST_PASSWORDS, CountingConnection, FakeClock, Game
from hypothesis import given
from hypothesis import strategies as st

from gameserver.broadcast import settle_frames, split_publication
from gameserver.jobs import run_jobs
from gameserver.protocol import (
    JOB_REQUEST,
    ActionRequest,
    Event,
    Reply,
    decode_marks,
    decode_reply,
    encode,
)
from gameserver.seed import seed_world
from gameserver.service import GameService
from gameserver.store.base import FIRST_PLACEHOLDER, LAST_PLACEHOLDER, settle_placeholders
from gameserver.store.redis_backend import RedisStore
from gameserver.topics import room_topic
from gameserver.world import World


def _say_job(token: str, text: str, action_id: str | None = None) -> list[bytes]:
    request = ActionRequest(token=token, action_id=action_id or uuid.uuid4().hex, text=text)
    return [JOB_REQUEST, encode(request)]


def _published_seqs(frames: list[bytes]) -> list[int]:
    seqs = []
    for frame in frames[2:]:
        split = split_publication(frame)
        assert split is not None
        seqs.append(orjson.loads(split[1])["seq"])
    return seqs


def test_two_workers_numbering_one_room_do_not_refuse_each_other(
    counted_stores: list[RedisStore], world: World, clock: FakeClock
) -> None:
    seed_world(counted_stores[0], world)
    first, second = (
        GameService(s, world, passwords=FAST_PASSWORDS, clock=clock) for s in counted_stores
    )
    game = Game(first)
    alice, bob = game.login("Alice"), game.login("Bob")
    topic = room_topic(alice.room)
    run_jobs(first, [_say_job(alice.token, "say warm")])  # the first worker's copy is warm
    # ...and now behind on the seq (asked through the first, its copy would learn it)
    (bobs,) = run_jobs(second, [_say_job(bob.token, "say warm too")])
    (head,) = _published_seqs(bobs)
    assert first.store.copy.counters[f"{first.store.tag}:c:seq:{topic}"] == head - 1

    before = CountingConnection.sent
    job = _say_job(alice.token, "say one", action_id="a" * 32)
    (frames,) = run_jobs(first, [job, _say_job(alice.token, "say two")])[:1]
    assert CountingConnection.sent - before == 1  # not refused for the counter it was behind on
    (published,) = _published_seqs(frames)
    assert published == head + 1
    assert decode_marks(frames[1])[topic] == head + 1

    logged = [orjson.loads(raw) for raw in first.store.events_since(topic, head)]
    assert [event["seq"] for event in logged] == [head + 1, head + 2]
    assert "one" in logged[0]["text"] and "two" in logged[1]["text"]
    assert b"-" + str(FIRST_PLACEHOLDER).encode() not in b"".join(
        first.store.events_since(topic, 0)
    )

    # The same action again, on either worker: its record answers with the seq it was given.
    for service in (first, second):
        (again,) = run_jobs(service, [job])
        assert _published_seqs(again) == [head + 1]
        assert decode_marks(again[1])[topic] == head + 1
        reply = decode_reply(again[0])
        assert isinstance(reply, Reply) and reply.ok


def test_a_worker_copy_learns_the_counter_its_reservations_reached(
    counted_stores: list[RedisStore], world: World, clock: FakeClock
) -> None:
    """After a batch, a catch-up's head (a counter read) is current without a refusal."""
    seed_world(counted_stores[0], world)
    service = GameService(counted_stores[0], world, passwords=FAST_PASSWORDS, clock=clock)
    alice = Game(service).login("Alice")
    topic = room_topic(alice.room)
    run_jobs(service, [_say_job(alice.token, f"say {i}") for i in range(3)])
    in_redis = counted_stores[1].read(lambda tx: tx.counter("seq", topic))
    assert service.store.read(lambda tx: tx.counter("seq", topic)) == in_redis


_PLACEHOLDERS = st.integers(FIRST_PLACEHOLDER, LAST_PLACEHOLDER).map(lambda n: -n)


@given(
    text=st.text(max_size=80) | st.sampled_from(['"seq":-1000001', '\\":-1000001', '"seq":-1']),
    placeholder=_PLACEHOLDERS,
    seq=st.integers(1, 2**40),
)
def test_only_an_events_own_seq_is_settled_whatever_its_text(
    text: str, placeholder: int, seq: int
) -> None:
    event = Event(topic="room.hall", seq=1, kind="say", text=text, ts=1.0)
    raw = encode(event.model_copy(update={"seq": placeholder}))
    settled = settle_placeholders(raw, {placeholder: seq})
    assert orjson.loads(settled) == {**orjson.loads(raw), "seq": seq}
    # Frames of an answer: the marks frame settles too, the reply is left alone.
    marks = orjson.dumps({"room.hall": placeholder})
    wire = b"room.hall\x00" + raw
    reply = orjson.dumps({"text": text})
    out = settle_frames([reply, marks, wire], {placeholder: seq})
    assert out[0] == reply
    assert orjson.loads(out[1]) == {"room.hall": seq}
    assert orjson.loads(out[2].split(b"\x00", 1)[1])["text"] == text
    assert orjson.loads(out[2].split(b"\x00", 1)[1])["seq"] == seq


def test_nothing_is_settled_without_reservations() -> None:
    frames = [b"{}", b'{"room.hall":-1000001}', b'room.hall\x00{"seq":-1000001}']
    assert settle_frames(frames, {}) is frames
    assert settle_placeholders(frames[2], {-1000002: 7}) == frames[2]  # not this batch's
