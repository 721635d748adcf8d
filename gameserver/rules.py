"""Applying one player action, exactly once.

:func:`execute` is what a worker calls for every action. In a single store transaction it
checks the token, runs the command, numbers and logs the events, and records the action id
with the reply and events produced. A retry of the same action id (say after a worker crashed
before answering) finds that record and gets the same answer back, with nothing applied twice.

Exactly-once is for effects. A command that declares itself ``read_only`` (look, inventory,
who...) first runs in a read-only store transaction: no write lock, no write, no sync, and no
record (a retried look simply looks again). Should it turn out to need a write after all (it
emitted an event, or the session's sliding expiry is due a renewal) it runs again as a normal
transaction.
"""

from __future__ import annotations

import hashlib
import time

from pydantic import ValidationError

from .accounts import (
    DEFAULT_SESSION_TTL,
    Identity,
    Unauthorized,
    authenticate,
    refresh,
    unauthorized_reply,
)
from .commands import Command, CommandError, CommandSet, Context, default_commands
from .display import safe_text
from .events import Outcome, publish
from .protocol import ActionRequest, ErrorReply, Event, Reply
from .store.base import Store, Tx, WriteInRead
from .store.records import ActionRecord, SessionRecord
from .store.state import GameState
from .topics import room_topic
from .world import World

_DEFAULT_COMMANDS = default_commands()
#: A session's sliding expiry is renewed only once it lags ``now + ttl`` by this share of the
#: ttl (90 s of 30 min), not on every action: most actions then write nothing for it. A
#: session may so expire up to that much earlier than ttl after its last action.
REFRESH_SLACK = 0.05


def refresh_due(session: SessionRecord, now: float, ttl: float) -> bool:
    return now + ttl - session.expires_at > ttl * REFRESH_SLACK


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _stored(record: ActionRecord, text: str) -> Outcome:
    if record.text_digest != _digest(text):
        return Outcome(
            ErrorReply(
                code="conflict", message="That action id was already used for another command."
            )
        )
    reply = Reply.model_validate(record.reply)
    events = [Event.model_validate(raw) for raw in record.events]
    return Outcome(reply, events, replayed=True)


def _record(
    state: GameState, identity: Identity, action_id: str, text: str, outcome: Outcome
) -> None:
    record = ActionRecord(
        text_digest=_digest(text),
        reply=outcome.reply.model_dump(mode="json"),
        events=[event.model_dump(mode="json") for event in outcome.events],
    )
    state.record_action(identity.player.key, action_id, record)


def execute(
    store: Store,
    world: World,
    token: str,
    action_id: str,
    text: str,
    *,
    now: float | None = None,
    commands: CommandSet | None = None,
    session_ttl: float = DEFAULT_SESSION_TTL,
) -> Outcome:
    """Run the command line ``text`` as the player of ``token``, at most once per
    ``action_id``. A refused command (``Reply.ok`` False) changes nothing but is recorded too,
    so its retry answers the same way. Store failures propagate as ``StoreError``."""
    try:
        request = ActionRequest(token=token, action_id=action_id, text=text)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        return Outcome(ErrorReply(code="bad_request", message=f"{first['loc'][0]}: {first['msg']}"))
    return execute_request(
        store, world, request, now=now, commands=commands, session_ttl=session_ttl
    )


def _is_current(identity: Identity, now: float) -> bool:
    """What ``authenticate`` checks beyond ``allow_ended``, on records already read."""
    return identity.session.is_live(now) and identity.player.session == identity.session.key


def _entered_room_head(
    state: GameState, before: str, after: str, events: list[Event]
) -> dict[str, int]:
    """Where the log of the room an action took its player into stands, when no arrival of
    theirs marks it: a crowded room is not told who comes (presence.py), and without a mark
    the client would fetch the room's whole log (up to a thousand events of others' talk)
    only to learn where to start. A glimpse: a moment behind at worst, so the client gets
    those few events, and the move does not come to depend on the room's every event."""
    topic = room_topic(after)
    if after == before or any(event.topic == topic for event in events):
        return {}
    return {topic: state.last_seq_glimpse(topic)}


def execute_request(
    store: Store,
    world: World,
    request: ActionRequest,
    *,
    now: float | None = None,
    commands: CommandSet | None = None,
    session_ttl: float = DEFAULT_SESSION_TTL,
) -> Outcome:
    """:func:`execute` for a request validated already (at the edge, when it was decoded)."""
    now = time.time() if now is None else now
    commands = commands or _DEFAULT_COMMANDS
    # safe_text: no bidi overrides or invisible characters on others' screens (display.py)
    token, action_id, text = request.token, request.action_id, safe_text(request.text)

    def begin(state: GameState, *, check_record: bool = True) -> Identity | Outcome:
        """The acting identity, or the final outcome if there is nothing to run. The session
        and player are read once: an ended session still finds its recorded actions."""
        try:
            identity = authenticate(state, token, now, allow_ended=True)
        except Unauthorized:
            return Outcome(unauthorized_reply())
        if check_record:
            record = state.action(identity.player.key, action_id)
            if record is not None:
                return _stored(record, text)
        if not _is_current(identity, now):
            return Outcome(unauthorized_reply())
        return identity

    def apply(tx: Tx) -> Outcome:
        state = GameState(tx)
        identity = begin(state)
        if isinstance(identity, Outcome):
            return identity
        ctx = Context(state, world, identity.player, now)
        assert command is not None
        command.func(ctx)
        if not ctx.session_ended and refresh_due(identity.session, now, session_ttl):
            refresh(state, identity.session, now, session_ttl)
        reply = Reply(
            ok=True,
            text=ctx.reply_text,
            action_id=action_id,
            room=ctx.player.room,
            session_ended=ctx.session_ended,
        )
        events = publish(state, ctx.events, now)
        heads = _entered_room_head(state, identity.player.room, ctx.player.room, events)
        outcome = Outcome(reply, events, heads=heads)
        _record(state, identity, action_id, text, outcome)
        return outcome

    def look_only(tx: Tx) -> Outcome:
        """The read-only run: raises WriteInRead if the command needs a write after all. No
        record is looked up: a read-only command is never recorded as such, and should its
        id belong to a recorded one (it fell back to a write), looking again is harmless."""
        state = GameState(tx)
        identity = begin(state, check_record=False)
        if isinstance(identity, Outcome):
            return identity
        if refresh_due(identity.session, now, session_ttl):
            raise WriteInRead("the session's expiry is due a renewal")
        ctx = Context(state, world, identity.player, now)
        assert command is not None
        try:
            command.func(ctx)
        except CommandError as refusal:
            reply = Reply(ok=False, text=str(refusal), action_id=action_id, room=ctx.player.room)
            return Outcome(reply)
        if ctx.events or ctx.session_ended:
            raise WriteInRead("the command had effects")
        reply = Reply(ok=True, text=ctx.reply_text, action_id=action_id, room=ctx.player.room)
        return Outcome(reply)

    def refuse(tx: Tx, message: str) -> Outcome:
        state = GameState(tx)
        identity = begin(state)
        if isinstance(identity, Outcome):
            return identity  # a concurrent retry of this action id got there first
        if refresh_due(identity.session, now, session_ttl):
            refresh(state, identity.session, now, session_ttl)
        reply = Reply(ok=False, text=message, action_id=action_id, room=identity.player.room)
        outcome = Outcome(reply)
        _record(state, identity, action_id, text, outcome)
        return outcome

    command: Command | None = None
    try:
        command = commands.resolve(text)
        if command.read_only:
            try:
                return store.read(look_only)
            except WriteInRead:
                pass  # it has effects after all: the full, recorded transaction below
        return store.transaction(apply)
    except CommandError as refusal:
        message = str(refusal)
    # The refused attempt's writes were rolled back; record the refusal on its own.
    return store.transaction(lambda tx: refuse(tx, message))
