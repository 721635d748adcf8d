"""Catch-up: events a subscriber missed (PUB/SUB drops messages while disconnected)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, overload

import orjson
from pydantic import ValidationError

from .accounts import Unauthorized, authenticate, unauthorized_reply
from .events import Outcome
from .protocol import CatchupReply, CatchupRequest, ErrorReply, Event
from .store.base import LogRead, Store, Tx
from .store.state import GameState
from .topics import may_read


def catchup(
    store: Store, token: str, topic: str, since_seq: int, *, now: float | None = None
) -> Outcome:
    """Logged events of ``topic`` after ``since_seq``, if the session may read that topic
    (the world, its current room, its own private topic)."""
    now = time.time() if now is None else now
    try:
        CatchupRequest(token=token, topic=topic, since_seq=since_seq)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        return Outcome(ErrorReply(code="bad_request", message=f"{first['loc'][0]}: {first['msg']}"))

    def allowed(tx: Tx) -> ErrorReply | None:
        state = GameState(tx)
        try:
            identity = authenticate(state, token, now)
        except Unauthorized:
            # An ended session may still read its own private topic: that is where it learns
            # why it ended ("you logged in elsewhere"), so that client stops instead of logging
            # in again and taking the session back.
            try:
                identity = authenticate(state, token, now, allow_ended=True)
            except Unauthorized:
                return unauthorized_reply()
            if topic != identity.session.private_topic:
                return unauthorized_reply()
        if not may_read(topic, identity.player.room, identity.session.private_topic):
            return ErrorReply(code="forbidden", message=f"Not subscribed to {topic}.")
        return None

    # The check writes nothing: a read, without the write lock or a commit (issue 12).
    refusal = store.read(allowed)
    if refusal is not None:
        return Outcome(refusal)
    log = store.read_log(topic, since_seq)
    if not log.ready:  # read with the worker's batch, in its one round trip
        return PendingCatchup(CatchupReply.model_construct(topic=topic), log=log)
    return logged_catchup(topic, since_seq, log.payloads)


def logged_catchup(topic: str, since_seq: int, payloads: list[bytes]) -> CatchupOutcome:
    """The catch-up reply of ``payloads``, the log of ``topic`` after ``since_seq``."""
    # The log holds the very bytes the workers published (encoded from validated Events): they
    # are neither validated nor decoded again. The reply splices them in (CatchupOutcome), and
    # a catch-up of a busy topic's whole log (1,000 events) costs no Python work per event.
    truncated = bool(payloads) and orjson.loads(payloads[0])["seq"] > since_seq + 1
    events = LoggedEvents(payloads)
    reply = CatchupReply.model_construct(topic=topic, events=events, truncated=truncated)
    return CatchupOutcome(reply, payloads=payloads)


class LoggedEvents(Sequence[Event]):
    """Logged event payloads seen as Events, decoded on first use only (tests and tools
    read them; the worker's reply never does). The reply holding them is encoded by
    :meth:`CatchupOutcome.reply_bytes`, not by ``model_dump`` (pydantic cannot serialize
    this sequence)."""

    def __init__(self, payloads: list[bytes]) -> None:
        self._payloads = payloads
        self._events: list[Event] | None = None

    def _decoded(self) -> list[Event]:
        if self._events is None:
            self._events = [Event.model_construct(**orjson.loads(raw)) for raw in self._payloads]
        return self._events

    def __len__(self) -> int:
        return len(self._payloads)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        return self._decoded()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LoggedEvents | list):
            return self._decoded() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, as a list

    def __repr__(self) -> str:
        return repr(self._decoded())


#: The fields every CatchupReply starts with (protocol version and type), as the model has them.
CATCHUP_HEAD = CatchupReply.model_construct(topic="", events=[], truncated=False).model_dump(
    include={"v", "type"}
)


@dataclass(frozen=True)
class CatchupOutcome(Outcome):
    """A catch-up's outcome whose reply is encoded around the logged payloads, unchanged."""

    payloads: list[bytes] | None = None

    def reply_bytes(self) -> bytes:
        reply = self.reply
        if self.payloads is None or not isinstance(reply, CatchupReply):
            return super().reply_bytes()
        return orjson.dumps(
            {
                **CATCHUP_HEAD,
                "topic": reply.topic,
                "events": [orjson.Fragment(raw) for raw in self.payloads],
                "truncated": reply.truncated,
            }
        )


@dataclass(frozen=True)
class PendingCatchup(Outcome):
    """A permitted catch-up whose log is read with its batch's commit (Store.read_log): its
    reply names the topic only, until :meth:`settled` brings the events."""

    waits_for_batch: ClassVar[bool] = True
    log: LogRead | None = None

    def reply_bytes(self) -> bytes:
        raise RuntimeError("a catch-up's reply is made once its batch has ended (settled)")

    def settled(self) -> Outcome:
        assert self.log is not None
        return logged_catchup(self.log.topic, self.log.since_seq, self.log.payloads)
