"""Wire messages between client, front and workers: pydantic v2 models encoded as JSON by orjson.

Every message carries ``v`` (the protocol version) and ``type`` (the discriminator). Requests
come from untrusted clients, so :func:`decode_request` bounds sizes, validates strictly and turns
every kind of bad input into a :class:`ProtocolError`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 4096
MAX_TEXT_CHARS = 500

# A leading letter keeps names from looking like numbers, topics or command punctuation.
PlayerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{1,19}$")]
Password = Annotated[str, StringConstraints(min_length=4, max_length=128)]
SessionToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
ActionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
# Control characters have no business in a command line and could corrupt other players' screens.
CommandText = Annotated[
    str, StringConstraints(max_length=MAX_TEXT_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$")
]
Topic = Annotated[
    str, StringConstraints(pattern=r"^(world|room\.[a-z0-9_]{1,48}|priv\.[0-9a-f]{32})$")
]
ErrorCode = Literal[
    "bad_request",
    "too_large",
    "unsupported_version",
    "unauthorized",
    "bad_credentials",
    "forbidden",
    "conflict",
    "rate_limited",
    "unavailable",
    "internal",
]
EventValue = str | int | float | bool | None


class Message(BaseModel):
    """Common base: immutable, strict, and no unknown fields (new fields mean a new version)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    v: Literal[1] = 1


# --- requests (client/front -> worker) ---------------------------------------------------------


class LoginRequest(Message):
    """Log in; the first login with an unused name registers it."""

    type: Literal["login"] = "login"
    name: PlayerName
    password: Password


class ResumeRequest(Message):
    """Re-attach to a live session (e.g. after a reconnect) without sending the password."""

    type: Literal["resume"] = "resume"
    token: SessionToken


class ActionRequest(Message):
    """Run one command line. ``action_id`` is client-made and makes retries idempotent."""

    type: Literal["action"] = "action"
    token: SessionToken
    action_id: ActionId
    text: CommandText


class CatchupRequest(Message):
    """Ask for the events of ``topic`` after ``since_seq`` that a subscriber may have missed."""

    type: Literal["catchup"] = "catchup"
    token: SessionToken
    topic: Topic
    since_seq: Annotated[int, Field(ge=0, le=2**62)]


Request: TypeAlias = Annotated[
    LoginRequest | ResumeRequest | ActionRequest | CatchupRequest, Field(discriminator="type")
]


# --- replies and events (worker -> front/client) -----------------------------------------------


class Event(Message):
    """Something that happened, published on ``topic``; ``(topic, seq)`` is unique, so
    subscribers drop duplicates (a retried action republishes its stored events)."""

    type: Literal["event"] = "event"
    topic: str
    seq: int
    kind: str
    text: str
    actor: str | None = None
    data: dict[str, EventValue] = Field(default_factory=dict)
    ts: float


class Reply(Message):
    """Outcome of an action. ``ok`` is False when the game refused (e.g. nothing to take)."""

    type: Literal["reply"] = "reply"
    ok: bool
    text: str
    action_id: str
    room: str | None = None
    session_ended: bool = False


class ErrorReply(Message):
    """The request could not be handled at all (bad input, bad session, overload...)."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str


class LoginReply(Message):
    """A session was opened (or resumed). ``private_topic`` is secret: it derives from the token."""

    type: Literal["login_ok"] = "login_ok"
    token: str
    player: str
    room: str
    private_topic: str
    topics: list[str]
    text: str
    created: bool = False


class CatchupReply(Message):
    """Missed events in seq order; ``truncated`` means older ones fell out of the bounded log."""

    type: Literal["catchup"] = "catchup"
    topic: str
    events: list[Event]
    truncated: bool


ReplyMessage: TypeAlias = Annotated[
    Reply | ErrorReply | LoginReply | CatchupReply, Field(discriminator="type")
]

_REQUEST_ADAPTER: TypeAdapter[Request] = TypeAdapter(Request)
_REPLY_ADAPTER: TypeAdapter[ReplyMessage] = TypeAdapter(ReplyMessage)


class ProtocolError(ValueError):
    """Raised for any malformed, oversized or invalid message; ``code`` is an ErrorCode."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def to_reply(self) -> ErrorReply:
        return ErrorReply(code=self.code, message=self.message)


def encode(message: Message) -> bytes:
    """Serialize any message to JSON bytes."""
    return orjson.dumps(message.model_dump(mode="json"))


def _load_object(raw: bytes | bytearray | memoryview, limit: int | None) -> dict[str, Any]:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ProtocolError("bad_request", "message must be bytes")
    if limit is not None and len(raw) > limit:
        raise ProtocolError("too_large", f"message exceeds {limit} bytes")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("bad_request", f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_request", "message must be a JSON object")
    version = obj.get("v")
    # bool is an int subclass: `true` must not pass for version 1.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError("unsupported_version", f"expected protocol version {PROTOCOL_VERSION}")
    return obj


def _describe(exc: ValidationError) -> str:
    # Never echo the input back: it is untrusted and may be large.
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:300]


def decode_request(raw: bytes | bytearray | memoryview) -> Request:
    """Parse and validate one request; raises :class:`ProtocolError` and nothing else."""
    obj = _load_object(raw, MAX_REQUEST_BYTES)
    try:
        return _REQUEST_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise ProtocolError("bad_request", _describe(exc)) from None


def decode_reply(
    raw: bytes | bytearray | memoryview,
) -> Reply | ErrorReply | LoginReply | CatchupReply:
    """Parse a reply (for clients and tests); raises :class:`ProtocolError`."""
    obj = _load_object(raw, None)
    try:
        return _REPLY_ADAPTER.validate_python(obj)
    except ValidationError as exc:
        raise ProtocolError("bad_request", _describe(exc)) from None


def decode_event(raw: bytes | bytearray | memoryview) -> Event:
    """Parse a published event; raises :class:`ProtocolError`."""
    obj = _load_object(raw, None)
    try:
        return Event.model_validate(obj)
    except ValidationError as exc:
        raise ProtocolError("bad_request", _describe(exc)) from None
