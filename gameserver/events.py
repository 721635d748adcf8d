"""Turning what game logic says happened into numbered, logged, publishable events.

Logic produces :class:`EventDraft` objects; :func:`publish` gives each the next sequence number
of its topic and appends it to the topic's recent-events log, in the caller's transaction, so a
number is never used twice or skipped even with many workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from .protocol import (
    CatchupReply,
    ErrorReply,
    Event,
    EventValue,
    LoginReply,
    Reply,
    encode,
)
from .store.state import GameState


@dataclass(frozen=True)
class EventDraft:
    topic: str
    kind: str
    text: str
    actor: str | None = None
    data: dict[str, EventValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a worker sends back for one request: the reply for the requester, and the events
    to publish (each on its own topic)."""

    reply: Reply | ErrorReply | LoginReply | CatchupReply
    events: list[Event] = field(default_factory=list)
    replayed: bool = False  # the stored result of an action id seen before
    #: Where public topics the requester starts to follow stand (their last seq), sent with
    #: the reply's marks: a login or resume whose events mark no world (or no room) would
    #: otherwise have its client fetch that topic's whole log just to learn where it stands.
    heads: dict[str, int] = field(default_factory=dict)

    #: True for an outcome that waits for its batch's end (a store read that comes with the
    #: batch's round trip): its reply is known only from :meth:`settled`.
    waits_for_batch: ClassVar[bool] = False

    def reply_bytes(self) -> bytes:
        return encode(self.reply)

    def settled(self) -> Outcome:
        """The outcome as it stands once its batch has ended (see ``waits_for_batch``)."""
        return self

    def publications(self) -> list[tuple[str, bytes]]:
        """``(topic, payload)`` pairs ready for a PUB socket."""
        return [(event.topic, encode(event)) for event in self.events]


def publish(state: GameState, drafts: Iterable[EventDraft], now: float) -> list[Event]:
    """Number and log drafts within the current transaction; returns the final events."""
    events = []
    for draft in drafts:
        event = Event(
            topic=draft.topic,
            seq=state.next_seq(draft.topic),
            kind=draft.kind,
            text=draft.text,
            actor=draft.actor,
            data=dict(draft.data),
            ts=now,
        )
        state.log_event(event)
        events.append(event)
    return events


def heads(state: GameState, topics: Iterable[str]) -> dict[str, int]:
    """The last seq of each of ``topics``, read in the caller's transaction (after its own
    events, so they count)."""
    return {topic: state.last_seq(topic) for topic in topics}
