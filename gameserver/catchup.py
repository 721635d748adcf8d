"""Catch-up: events a subscriber missed (PUB/SUB drops messages while disconnected)."""

from __future__ import annotations

import time

from pydantic import ValidationError

from .accounts import Unauthorized, authenticate, unauthorized_reply
from .events import Outcome
from .protocol import CatchupReply, CatchupRequest, ErrorReply, decode_event
from .store.base import Store, Tx
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

    refusal = store.transaction(allowed)
    if refusal is not None:
        return Outcome(refusal)
    events = [decode_event(raw) for raw in store.events_since(topic, since_seq)]
    truncated = bool(events) and events[0].seq > since_seq + 1
    return Outcome(CatchupReply(topic=topic, events=events, truncated=truncated))
