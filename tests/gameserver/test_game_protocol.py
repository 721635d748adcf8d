"""Wire messages: round trips, strict validation, and hostile bytes."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gameserver.protocol import (
    JOB_REQUEST,
    JOB_TICK,
    MAX_REQUEST_BYTES,
    PING_BODY,
    ActionRequest,
    CatchupRequest,
    ErrorReply,
    Event,
    LoginReply,
    LoginRequest,
    Notice,
    PingRequest,
    Pong,
    ProtocolError,
    Reply,
    ResumeRequest,
    decode_answer,
    decode_event,
    decode_marks,
    decode_notice,
    decode_reply,
    decode_request,
    encode,
    encode_marks,
    pong_bytes,
    request_job,
    split_result,
    tick_job,
    validated,
)

TOKEN = "A" * 43
VALID_REQUESTS = [
    LoginRequest(name="Alice", password="secret"),
    ResumeRequest(token=TOKEN),
    ActionRequest(token=TOKEN, action_id="c1-42", text="take lamp"),
    CatchupRequest(token=TOKEN, topic="room.crossroads", since_seq=7),
]


@pytest.mark.parametrize("request_", VALID_REQUESTS, ids=lambda r: r.type)
def test_requests_round_trip(request_: object) -> None:
    raw = encode(request_)  # type: ignore[arg-type]
    assert orjson.loads(raw)["v"] == 1
    assert decode_request(raw) == request_


def test_replies_and_events_round_trip() -> None:
    event = Event(
        topic="world", seq=3, kind="shout", text="Hi!", actor="Bob", data={"n": 1}, ts=1.5
    )
    assert decode_event(encode(event)) == event
    for reply in (
        Reply(ok=True, text="ok", action_id="a1", room="crossroads"),
        ErrorReply(code="unauthorized", message="no"),
        LoginReply(
            token=TOKEN, player="Bob", room="r", private_topic="p", topics=["world"], text=""
        ),
    ):
        assert decode_reply(encode(reply)) == reply


def _raw(**fields: object) -> bytes:
    return orjson.dumps(fields)


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (b"", "bad_request", "JSON"),
        (b"{not json", "bad_request", "JSON"),
        (b"\xff\xfe{}", "bad_request", "JSON"),
        (b"[1, 2]", "bad_request", "object"),
        (_raw(type="login", name="Alice", password="secret"), "unsupported_version", "version"),
        (_raw(v=2, type="login", name="Alice", password="secret"), "unsupported_version", ""),
        (_raw(v=True, type="login", name="Alice", password="secret"), "unsupported_version", ""),
        (_raw(v=1, type="teleport"), "bad_request", ""),
        (_raw(v=1, type="login", name="A", password="secret"), "bad_request", "name"),
        (_raw(v=1, type="login", name="9lives", password="secret"), "bad_request", "name"),
        (_raw(v=1, type="login", name="x" * 21, password="secret"), "bad_request", "name"),
        (_raw(v=1, type="login", name="Al ice", password="secret"), "bad_request", "name"),
        (_raw(v=1, type="login", name="Alice", password="abc"), "bad_request", "password"),
        (
            _raw(v=1, type="action", token=TOKEN, action_id="a", text="x" * 501),
            "bad_request",
            "text",
        ),
        (
            _raw(v=1, type="action", token=TOKEN, action_id="a", text="hi\x1b[2J"),
            "bad_request",
            "text",
        ),
        (
            _raw(v=1, type="action", token=TOKEN, action_id="a" * 65, text="x"),
            "bad_request",
            "action_id",
        ),
        (_raw(v=1, type="action", token="short", action_id="a", text="x"), "bad_request", "token"),
        (_raw(v=1, type="catchup", token=TOKEN, topic="room.x", since_seq=-1), "bad_request", ""),
        (_raw(v=1, type="catchup", token=TOKEN, topic="secrets", since_seq=0), "bad_request", ""),
        (_raw(v=1, type="catchup", token=TOKEN, topic="world", since_seq="1"), "bad_request", ""),
        # Identity comes from the token only: a request cannot name the player it acts as.
        (
            _raw(v=1, type="action", token=TOKEN, action_id="a", text="x", player="Bob"),
            "bad_request",
            "player",
        ),
        (b" " * (MAX_REQUEST_BYTES + 1), "too_large", ""),
        (b"[" * 5000, "too_large", ""),
        (b"[" * 2000, "bad_request", ""),
    ],
)
def test_invalid_requests_raise_protocol_error(raw: bytes, code: str, fragment: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_request(raw)
    assert caught.value.code == code
    assert fragment in caught.value.message
    assert caught.value.to_reply().code == code


def test_error_message_does_not_echo_input() -> None:
    secret = "hunter2-" * 10
    with pytest.raises(ProtocolError) as caught:
        decode_request(_raw(v=1, type="login", name="Al ice", password=secret))
    assert "hunter2" not in caught.value.message


def _decodes_or_protocol_error(raw: bytes) -> None:
    try:
        decode_request(raw)
    except ProtocolError as exc:
        assert exc.code in ("bad_request", "too_large", "unsupported_version")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=MAX_REQUEST_BYTES + 64))
def test_fuzz_random_bytes(raw: bytes) -> None:
    _decodes_or_protocol_error(raw)


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    data = bytearray(encode(draw(st.sampled_from(VALID_REQUESTS))))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


@settings(max_examples=400)
@given(mutated_requests())
def test_fuzz_mutated_valid_requests(raw: bytes) -> None:
    _decodes_or_protocol_error(raw)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)
plausible = json_values | st.sampled_from([1, 0, "", "Alice", "secret", TOKEN, "world", "x" * 600])
structured = st.fixed_dictionaries(
    {
        "v": st.just(1) | json_values,
        "type": st.sampled_from(["login", "resume", "action", "catchup"]) | json_values,
    },
    optional={
        name: plausible
        for name in ("name", "password", "token", "action_id", "text", "topic", "since_seq", "x")
    },
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(structured)
def test_fuzz_structured_objects(obj: dict[str, object]) -> None:
    _decodes_or_protocol_error(orjson.dumps(obj))


@given(st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{1,19}\Z"))
def test_every_well_formed_name_is_accepted(name: str) -> None:
    request = decode_request(_raw(v=1, type="login", name=name, password="secret"))
    assert isinstance(request, LoginRequest)
    assert request.name == name


# -- the front's own messages, the marks frame and the job frames ---------------------------------


def test_ping_has_one_spelling_and_pong_carries_counters() -> None:
    assert encode(PingRequest()) == PING_BODY  # the front compares bytes, so they must agree
    health = {"workers": 2, "idle": 1, "pending": 0, "draining": False, "requests": 7}
    pong = decode_reply(pong_bytes(health))
    assert isinstance(pong, Pong) and pong.model_dump() == {"v": 1, "type": "pong", **health}
    with pytest.raises(ProtocolError):  # counters are integers, whatever a front adds
        decode_reply(_raw(v=1, type="pong", workers=1, idle=1, pending=0, draining=False, x="a"))
    with pytest.raises(ProtocolError):
        decode_reply(_raw(v=1, type="pong", workers=1))


def test_answers_as_a_client_reads_them() -> None:
    reply = Reply(ok=True, text="You go north.", action_id="a1", room="hall")
    marks = {"room.hall": 4, "world": 9}
    assert decode_answer([encode(reply), encode_marks(marks)]) == (reply, marks)
    busy = ErrorReply(code="unavailable", message="busy")
    assert decode_answer([encode(busy)]) == (busy, {})  # the front's own answers have no marks
    for frames in ([], [encode(reply), b"{}", b"{}"]):
        with pytest.raises(ProtocolError):
            decode_answer(frames)


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b'{"world": -1}', b'{"world": true}', b'{"world": 1.5}', b'{"Room": 1}', b"{"],
)
def test_bad_marks_are_refused(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_marks(raw)


@settings(max_examples=300)
@given(st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_fuzz_answers(raw: bytes) -> None:
    for frames in ([raw], [encode(Reply(ok=True, text="", action_id="a")), raw], [raw, raw]):
        try:
            decode_answer(frames)
        except ProtocolError:
            pass


def test_notice_names_only_a_private_topic_and_seq() -> None:
    notice = Notice(topic="priv." + "a" * 32, seq=3)
    assert decode_notice(encode(notice)) == notice
    with pytest.raises(ProtocolError):
        decode_notice(_raw(v=1, type="notice", topic="priv.x", seq=3))


def test_validated_names_the_field_not_the_value() -> None:
    with pytest.raises(ProtocolError) as caught:
        validated(LoginRequest, name="Al ice", password="hunter2-secret")
    assert "name" in caught.value.message and "hunter2" not in caught.value.message


def test_job_frames() -> None:
    assert request_job(b"x") == [JOB_REQUEST, b"x"] and tick_job() == [JOB_TICK]
    assert split_result([b"busy"]) == ([b"busy"], [])
    # After the reply and its marks, every frame is one publication (wire topic + payload).
    assert split_result([b"r", b"{}", b"t\x00p", b"u\x00q"]) == (
        [b"r", b"{}"],
        [b"t\x00p", b"u\x00q"],
    )
    assert split_result([b"r", b"{}", b"t\x00p"]) == ([b"r", b"{}"], [b"t\x00p"])
    assert split_result([]) is None
