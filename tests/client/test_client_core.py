"""The client core with no I/O: reply matching, Lazy Pirate retries, order, topic following, gap
repair, and hostile bytes from the network (the same core the asyncio session and the load
tester drive)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.protocol import (
    BUSY_BACKOFF_INIT_S,
    REPAIR_GRACE_S,
    Call,
    ClientCore,
    Outbox,
    RequestRefused,
    ServerUnavailable,
    SessionError,
)
from gameserver.broadcast import notice_bytes, wire_topic
from gameserver.protocol import (
    PING_BODY,
    ActionRequest,
    CatchupReply,
    CatchupRequest,
    ErrorReply,
    Event,
    LoginReply,
    Message,
    Reply,
    decode_request,
    encode,
    encode_marks,
    pong_bytes,
)
from gameserver.topics import private_topic

TOKEN = "t" * 43
PRIVATE = private_topic(TOKEN)
HALL = "room.hall"


def login_reply(room: str = "hall") -> LoginReply:
    return LoginReply(
        token=TOKEN,
        player="alice",
        room=room,
        private_topic=PRIVATE,
        topics=["world", f"room.{room}", PRIVATE],
        text="Welcome.",
    )


def event(seq: int, topic: str = HALL, kind: str = "say") -> Event:
    return Event(topic=topic, seq=seq, kind=kind, text=f"line {seq}", ts=0.0)


def answer(call: Call, reply: Message, marks: dict[str, int] | None = None) -> list[bytes]:
    frames = [call.tag, b"", encode(reply)]
    return frames if marks is None else [*frames, encode_marks(marks)]


def requests(out: Outbox) -> list[Message]:
    return [decode_request(frames[2]) for frames in out.send if frames[2] != PING_BODY]


def catchups(out: Outbox) -> dict[str, int]:
    return {r.topic: r.since_seq for r in requests(out) if isinstance(r, CatchupRequest)}


def calls_of(core: ClientCore) -> dict[bytes, Call]:
    return core._calls


def logged_in(marks: dict[str, int] | None = None, **options: Any) -> tuple[ClientCore, Outbox]:
    """A core that logged in, with the catch-ups that follows answered empty."""
    core = ClientCore(timeout=1.0, retries=1, busy_budget=1.0, **options)
    call = core.login("alice", "secret", 0.0)
    core.take()
    core.receive_answer(answer(call, login_reply(), marks or {"world": 5, HALL: 3}), 0.1)
    out = core.take()
    for pending in list(calls_of(core).values()):
        request = pending.request
        assert isinstance(request, CatchupRequest)
        empty = CatchupReply(topic=request.topic, events=[], truncated=False)
        core.receive_answer(answer(pending, empty), 0.2)
    core.take()
    return core, out


def test_login_follows_three_topics_and_catches_up_on_each() -> None:
    core, out = logged_in()
    assert core.token == TOKEN and core.room == "hall" and not core.ended
    assert out.subscriptions == [(True, wire_topic(t)) for t in ("world", HALL, PRIVATE)]
    # Each subscription is followed by a catch-up from where the login's marks say it starts.
    assert catchups(out) == {"world": 5, HALL: 3, PRIVATE: 0}
    assert [c.kind for c in out.done] == ["login"]
    assert core.next_deadline() is None  # nothing in flight


def test_requests_carry_their_own_routing_frame() -> None:
    core, _ = logged_in()
    call = core.act("look", 1.0)
    (frames,) = core.take().send
    assert frames[0] == call.tag and frames[0] and frames[1] == b""
    request = decode_request(frames[2])
    assert isinstance(request, ActionRequest) and request.text == "look"


def test_answers_are_matched_by_tag_and_kind() -> None:
    core, _ = logged_in()
    call = core.act("look", 1.0)
    core.take()
    action_id = call.request.action_id  # type: ignore[attr-defined]
    right = Reply(ok=True, text="A hall.", action_id=action_id, room="hall")
    other = Reply(ok=True, text="?", action_id="someone-else", room="hall")
    core.receive_answer([b"999", b"", encode(right)], 1.1)  # no such call
    core.receive_answer(answer(call, other), 1.1)  # the wrong action
    core.receive_answer(answer(call, CatchupReply(topic=HALL, events=[], truncated=False)), 1.1)
    core.receive_answer([call.tag, encode(right)], 1.1)  # no delimiter
    core.receive_answer([call.tag, b"", b"{not json"], 1.1)
    assert not call.done and core.discarded == 5
    core.receive_answer(answer(call, right, {}), 1.2)
    assert call.done and call.result() == right and call.round_trip_ms == pytest.approx(200)
    core.receive_answer(answer(call, right, {}), 1.3)  # a late copy: dropped
    assert core.discarded == 6


def test_a_timeout_resends_the_same_frames_on_a_fresh_socket_then_gives_up() -> None:
    core, _ = logged_in()
    act = core.act("say hi", 10.0)
    first = core.take().send
    ping = core.ping(10.5)  # on the wire too, with its own deadline
    core.take()
    core.tick(10.9)
    assert core.take() == Outbox()  # not yet
    core.tick(11.0)  # the action's try expired: 1 of 1 retry used
    out = core.take()
    assert out.reset and out.send == [first[0], ping.frames]  # everything on the wire, again
    assert not act.done and not ping.done
    core.tick(12.0)  # both expire: the action's last try, the ping's only one
    assert act.done and ping.done
    with pytest.raises(ServerUnavailable):
        act.result()
    assert "2 tries" in str(act.error) and "1 tries" in str(ping.error)


def test_busy_answers_are_retried_with_backoff_then_reported() -> None:
    core, _ = logged_in()
    act = core.act("look", 20.0)
    sent = core.take().send
    busy = ErrorReply(code="unavailable", message="Server busy")
    core.receive_answer(answer(act, busy), 20.01)
    assert core.take() == Outbox() and not act.done
    due = core.next_deadline()
    assert due is not None and 20.01 < due <= 20.01 + BUSY_BACKOFF_INIT_S * 1.5
    core.tick(due)
    assert core.take().send == sent  # the same action id
    core.receive_answer(answer(act, busy), 20.95)  # the next back-off would pass the 1 s budget
    assert act.done
    with pytest.raises(RequestRefused) as refused:
        act.result()
    assert refused.value.code == "unavailable"


def test_actions_go_one_at_a_time_in_order() -> None:
    core, _ = logged_in()
    first, second = core.act("north", 1.0), core.act("say hi", 1.0)
    assert [r.text for r in requests(core.take())] == ["north"]  # type: ignore[attr-defined]
    core.receive_answer(answer(first, Reply(ok=True, text="ok", action_id="x")), 1.1)
    assert core.discarded == 1 and not first.done  # not its action id
    first_id = first.request.action_id  # type: ignore[attr-defined]
    core.receive_answer(answer(first, Reply(ok=True, text="ok", action_id=first_id)), 1.2)
    assert [r.text for r in requests(core.take())] == ["say hi"]  # type: ignore[attr-defined]
    assert not second.done
    core.abandon(second, 1.3)
    third = core.act("look", 1.4)
    assert [r.text for r in requests(core.take())] == ["look"] and not third.done  # type: ignore[attr-defined]


def test_a_move_follows_the_new_room_from_the_arrival_mark() -> None:
    core, _ = logged_in()
    act = core.act("east", 1.0)
    core.take()
    action_id = act.request.action_id  # type: ignore[attr-defined]
    reply = Reply(ok=True, text="A road.", action_id=action_id, room="road")
    core.receive_answer(answer(act, reply, {"room.hall": 9, "room.road": 41}), 1.1)
    out = core.take()
    assert out.subscriptions == [(False, wire_topic(HALL)), (True, wire_topic("room.road"))]
    assert catchups(out) == {"room.road": 41}
    assert core.room == "road" and set(core.tracks) == {"world", "room.road", PRIVATE}


def test_a_move_answered_elsewhere_is_followed_the_same_way() -> None:
    """follow_outcome: a listening twin of the session takes the other connection's reply
    and follows the new room exactly as a move answered here would; a reply that stays in the
    room changes nothing, and a core not logged in follows nothing."""
    core, _ = logged_in()
    core.follow_outcome(Reply(ok=True, text="Hall.", action_id="a1", room="hall"), {}, 1.0)
    assert core.take().subscriptions == []
    reply = Reply(ok=True, text="A road.", action_id="a2", room="road")
    core.follow_outcome(reply, {"room.hall": 9, "room.road": 41}, 1.1)
    out = core.take()
    assert out.subscriptions == [(False, wire_topic(HALL)), (True, wire_topic("room.road"))]
    assert catchups(out) == {"room.road": 41}
    assert core.room == "road" and set(core.tracks) == {"world", "room.road", PRIVATE}
    stranger = ClientCore(timeout=1.0, retries=1, busy_budget=1.0)
    stranger.follow_outcome(reply, {"room.road": 41}, 1.2)
    assert stranger.take().subscriptions == [] and stranger.room is None


def test_quitting_ends_the_session_and_every_subscription() -> None:
    core, _ = logged_in()
    act = core.act("quit", 1.0)
    core.take()
    action_id = act.request.action_id  # type: ignore[attr-defined]
    core.receive_answer(
        answer(act, Reply(ok=True, text="Bye", action_id=action_id, session_ended=True)), 1.1
    )
    out = core.take()
    assert core.ended and core.token is None and not core.tracks
    assert [s for s, _ in out.subscriptions] == [False, False, False]
    with pytest.raises(SessionError):
        core.act("look", 1.2)


def test_gaps_wait_a_grace_then_are_fetched_and_delivered_in_order() -> None:
    core, _ = logged_in()
    publish = lambda e, now: core.receive_publication([wire_topic(e.topic) + encode(e)], now)  # noqa: E731
    publish(event(4), 1.0)
    assert [e.seq for e in core.take().events] == [4]
    publish(event(6), 1.1)  # 5 is missing: maybe just late
    assert core.take() == Outbox() and core.next_deadline() == pytest.approx(1.1 + REPAIR_GRACE_S)
    core.tick(1.1 + REPAIR_GRACE_S)
    out = core.take()
    assert catchups(out) == {HALL: 4}
    (repair,) = calls_of(core).values()
    core.receive_answer(
        answer(repair, CatchupReply(topic=HALL, events=[event(5), event(6)], truncated=False)), 1.3
    )
    out = core.take()
    assert [e.seq for e in out.events] == [5, 6] and out.done == [repair]
    publish(event(6), 1.4)  # a duplicate
    assert core.take().events == []


def test_a_resume_catches_up_from_where_each_topic_was_read() -> None:
    """After a reconnect the session resumes with no marks (the player never left): each
    topic it still follows asks for what came after what it had read, not for a whole log
    whose past is then skipped; a topic it never read starts from now, as before."""
    core, _ = logged_in()  # world from 5, the hall from 3, the private topic from 0
    publish = lambda e, now: core.receive_publication([wire_topic(e.topic) + encode(e)], now)  # noqa: E731
    for seq in (4, 5, 6):
        publish(event(seq), 1.0)
    assert [e.seq for e in core.take().events] == [4, 5, 6]
    call = core.resume(TOKEN, 2.0)
    core.take()
    core.receive_answer(answer(call, login_reply()), 2.1)  # resumed: no marks
    out = core.take()
    assert catchups(out) == {"world": 5, HALL: 6, PRIVATE: 0}
    assert core.tracks[PRIVATE].cursor == 0  # read to 0: whatever comes is delivered
    (hall,) = [c for c in calls_of(core).values() if c.request.topic == HALL]  # type: ignore[attr-defined]
    missed = [event(7), event(8)]
    core.receive_answer(answer(hall, CatchupReply(topic=HALL, events=missed, truncated=False)), 2.2)
    assert core.take().events == missed  # what happened while it was away
    # Resumed into another room (moved elsewhere meanwhile): that room has no cursor here,
    # so it starts where the reply's marks (the server's heads) say the room stands; the
    # core's own cursors win over the marks for what it had read.
    call = core.resume(TOKEN, 3.0)
    core.take()
    core.receive_answer(answer(call, login_reply(room="road"), {"world": 9, "room.road": 30}), 3.1)
    assert catchups(core.take()) == {"world": 5, "room.road": 30, PRIVATE: 0}
    # With neither a cursor nor a mark (a server that sends no heads), the log is the past.
    call = core.resume(TOKEN, 4.0)
    core.take()
    core.receive_answer(answer(call, login_reply(room="yard")), 4.1)
    assert catchups(core.take()) == {"world": 5, "room.yard": 0, PRIVATE: 0}
    assert core.tracks["room.yard"].cursor is None


def test_private_notices_are_fetched_at_once_and_a_takeover_is_noticed() -> None:
    core, _ = logged_in()
    replaced = event(1, PRIVATE, "session_replaced")
    core.receive_publication([wire_topic(PRIVATE) + notice_bytes(replaced)], 1.0)
    assert catchups(core.take()) == {PRIVATE: 0}
    (repair,) = calls_of(core).values()
    core.receive_answer(
        answer(repair, CatchupReply(topic=PRIVATE, events=[replaced], truncated=False)), 1.1
    )
    assert core.take().events == [replaced] and core.replaced


def test_a_refused_repair_after_a_takeover_ends_the_session() -> None:
    core, _ = logged_in()
    core.receive_publication([wire_topic(PRIVATE) + notice_bytes(event(1, PRIVATE))], 1.0)
    core.take()
    (repair,) = calls_of(core).values()
    core.receive_answer(answer(repair, ErrorReply(code="unauthorized", message="no")), 1.1)
    assert core.ended and not core.tracks[PRIVATE].repairing


def test_bad_local_input_is_refused_before_anything_is_sent() -> None:
    core, _ = logged_in()
    for text in ("x" * 10_000, "bell\x07"):
        with pytest.raises(RequestRefused) as refused:
            core.act(text, 1.0)
        assert refused.value.code == "bad_request" and "text" in refused.value.reply.message
    with pytest.raises(RequestRefused) as refused:
        ClientCore().login("no spaces allowed", "hunter2-secret", 0.0)
    assert "hunter2" not in str(refused.value)
    assert core.take() == Outbox()


def test_ping_takes_only_a_pong() -> None:
    core = ClientCore()
    ping = core.ping(0.0)
    (frames,) = core.take().send
    assert frames[2] == PING_BODY
    core.receive_answer([ping.tag, b"", encode(ErrorReply(code="internal", message="?"))], 0.1)
    assert not ping.done
    health = {"workers": 1, "idle": 1, "pending": 0, "draining": False}
    core.receive_answer([ping.tag, b"", pong_bytes(health)], 0.1)
    assert ping.done and ping.result().workers == 1  # type: ignore[union-attr]


# -- hostile bytes --------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=12)
values = (
    scalars | st.lists(scalars, max_size=3) | st.sampled_from([TOKEN, PRIVATE, HALL, "hall", 3])
)
KINDS = ["reply", "error", "login_ok", "catchup", "pong", "event", "notice"]
FIELDS = ["ok", "text", "action_id", "room", "topic", "events", "seq", "code", "token", "kind"]
plausible = st.builds(
    lambda v, kind, fields: orjson.dumps({"v": v, "type": kind, **fields}),
    st.just(1) | scalars,
    st.sampled_from(KINDS) | scalars,
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=5),
)
VALID = [
    encode(Reply(ok=True, text="ok", action_id="x-1", room="hall")),
    encode(CatchupReply(topic=HALL, events=[event(9)], truncated=False)),
    encode(event(7)),
    encode_marks({HALL: 2}),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        if data and draw(st.booleans()):
            data[at] = draw(st.integers(0, 255))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


frame = st.binary(max_size=64) | plausible | mutated()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(frame, max_size=5), max_size=6), st.lists(st.tuples(frame, frame), max_size=6)
)
def test_fuzz_whatever_arrives_never_breaks_the_core(
    answers: list[list[bytes]], publications: list[tuple[bytes, bytes]]
) -> None:
    core, _ = logged_in()
    act = core.act("look", 1.0)
    core.take()
    for i, body in enumerate(answers):
        # Half of them carry the tag of the call in flight, so the parser behind it is reached.
        frames = [act.tag, b"", *body] if i % 2 == 0 else body
        core.receive_answer(frames, 1.1)
    for topic, payload in publications:
        core.receive_publication([topic + payload], 1.1)
        core.receive_publication([topic, payload], 1.1)  # two frames: not a publication
        core.receive_publication([wire_topic(HALL) + payload], 1.1)
        core.receive_publication([wire_topic(PRIVATE) + payload], 1.1)
    core.tick(1.2)
    out = core.take()
    assert all(isinstance(e, Event) for e in out.events)
    if act.done:  # only a well-formed answer to its own action can end it
        assert isinstance(act.reply, Reply | ErrorReply)
        if isinstance(act.reply, Reply):
            assert act.reply.action_id == act.request.action_id  # type: ignore[attr-defined]
    assert core.token == TOKEN and set(core.tracks) == {"world", HALL, PRIVATE}


def test_a_publisher_cannot_grow_what_is_held() -> None:
    core, _ = logged_in()
    for seq in range(10, 1510):  # 4..9 never come: everything after them waits
        core.receive_publication([wire_topic(HALL) + encode(event(seq))], 1.0)
    track = core.tracks[HALL]
    assert len(track.held) == 1000 and track.wanted == 1509  # the rest is known to exist


def walk_north(core: ClientCore) -> Outbox:
    """Go north and be answered: into the yard, whose seq the marks give as 9."""
    move = core.act("north", 1.0)
    core.take()
    action_id = move.request.action_id  # type: ignore[attr-defined]
    arrived = Reply(ok=True, text="A yard.", action_id=action_id, room="yard")
    core.receive_answer(answer(move, arrived, {"room.yard": 9}), 1.1)
    return core.take()


def test_a_core_that_does_not_follow_subscribes_to_nothing_and_never_catches_up() -> None:
    """An acting-only driver (a load tester's acting half: its twin listens): it still knows
    where its player is, but asks nothing about topics nobody reads on this session."""
    core = ClientCore(timeout=1.0, retries=1, busy_budget=1.0, follow=False)
    call = core.login("alice", "secret", 0.0)
    core.take()
    core.receive_answer(answer(call, login_reply(), {"world": 5, HALL: 3}), 0.1)
    out = core.take()
    assert out.subscriptions == [] and catchups(out) == {} and core.tracks == {}
    out = walk_north(core)
    assert core.room == "yard" and [c.kind for c in out.done] == ["action"]
    assert out.subscriptions == [] and out.send == [] and core.next_deadline() is None
    # The same answers to a following core: three topics, then the yard, each caught up.
    follower, followed = logged_in()
    assert followed.subscriptions and catchups(followed)
    assert catchups(walk_north(follower)) == {"room.yard": 9}
