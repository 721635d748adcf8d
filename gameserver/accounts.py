"""Accounts and sessions: log in (registering on first use), resume, and token checks.

The session token is the only proof of identity. It is random, returned once, and stored only
as a hash; every request names its player solely through it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from pydantic import ValidationError

from .events import EventDraft, Outcome, heads, publish
from .mailbox import deliver_pages
from .narration import describe_room
from .passwords import DEFAULT_POLICY, PasswordPolicy
from .presence import enter_world
from .protocol import ErrorReply, LoginReply, LoginRequest, ResumeRequest
from .store.base import Store, Tx
from .store.records import (
    Account,
    PasswordHash,
    PlayerRecord,
    SessionRecord,
    player_key,
    session_key,
)
from .store.state import GameState
from .topics import WORLD_TOPIC, private_topic, room_topic, session_topics
from .world import World

DEFAULT_SESSION_TTL = 30 * 60.0


class Unauthorized(Exception):
    """The token names no live session."""


@dataclass(frozen=True)
class Identity:
    session: SessionRecord
    player: PlayerRecord


def authenticate(
    state: GameState, token: str, now: float, *, allow_ended: bool = False
) -> Identity:
    """The session and player a token stands for; raises :class:`Unauthorized`.

    ``allow_ended`` accepts ended or expired sessions too: replaying the stored result of an
    action the session already applied must work even after ``quit``.
    """
    session = state.session(session_key(token))
    if session is None or not (allow_ended or session.is_live(now)):
        raise Unauthorized
    player = state.player(session.player)
    if player is None:
        raise Unauthorized
    if not allow_ended and player.session != session.key:
        raise Unauthorized  # replaced by a newer login
    return Identity(session, player)


def refresh(state: GameState, session: SessionRecord, now: float, ttl: float) -> None:
    """Slide the session's expiry forward: sessions expire after ``ttl`` of inactivity."""
    state.put_session(session.model_copy(update={"expires_at": now + ttl}))


def _bad_request(exc: ValidationError) -> ErrorReply:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return ErrorReply(code="bad_request", message=f"{where}: {first['msg']}")


class _NameTaken(Exception):
    """Someone registered the name between our check and our write."""


@dataclass(frozen=True)
class Hashing:
    """A step of a login that hashes or verifies a password (about 30 ms of one core): its
    driver runs ``work()`` where it cannot hold up play (the worker's hashing process), then
    resumes the login with the result. Store transactions stay with the driver's thread."""

    work: Callable[[], object]


#: A login as steps: yields its Hashing work, is sent each result, returns the Outcome.
LoginSteps = Generator[Hashing, object, Outcome]


def run_inline(steps: LoginSteps) -> Outcome:
    """Drive a login's steps on this thread, hashing included (tests, tools, one-off use)."""
    try:
        step = next(steps)
        while True:
            step = steps.send(step.work())
    except StopIteration as done:
        return done.value


def login(*args: Any, **kwargs: Any) -> Outcome:
    """:func:`login_steps`, hashing inline."""
    return run_inline(login_steps(*args, **kwargs))


def login_steps(
    store: Store,
    world: World,
    name: str,
    password: str,
    *,
    must_exist: bool = False,
    new_password: str | None = None,
    now: float | None = None,
    session_ttl: float = DEFAULT_SESSION_TTL,
    passwords: PasswordPolicy = DEFAULT_POLICY,
    may_register: bool = True,
) -> LoginSteps:
    """Open a session for ``name``; the first login registers it (unless ``must_exist``),
    later ones must match the password, and may set ``new_password``. A new login replaces the
    player's previous session (the old token stops working and its private topic gets a
    ``session_replaced`` notice). A password hash older than the policy (scrypt, or other
    Argon2 costs) is replaced by a fresh one on success. Without ``may_register`` (the front's
    registration budget is spent, admission.py) an unknown name is refused."""
    now = time.time() if now is None else now
    try:
        LoginRequest(name=name, password=password, new_password=new_password)
    except ValidationError as exc:
        return Outcome(_bad_request(exc))
    key = player_key(name)
    # Hashing takes ~30 ms: do it outside any transaction so the store is not held meanwhile.
    for _ in range(3):
        account = store.transaction(lambda tx: GameState(tx).account(key))
        new_hash: PasswordHash | None = None
        rehash: tuple[PasswordHash, PasswordHash] | None = None  # (verified, replacement)
        if account is None and not may_register:
            return Outcome(NO_REGISTRATION)
        if account is None:
            if must_exist:
                return Outcome(
                    ErrorReply(code="no_account", message=f"No account is called {name}.")
                )
            new_hash = cast(PasswordHash, (yield Hashing(partial(passwords.hash, password))))
        else:
            if not (yield Hashing(partial(passwords.verify, password, account.password))):
                return Outcome(
                    ErrorReply(code="bad_credentials", message="Wrong name or password.")
                )
            fresh = new_password if new_password is not None else password
            # A verified login may change the password, or replace a hash older than the policy.
            if new_password is not None or passwords.needs_rehash(account.password):
                replacement = yield Hashing(partial(passwords.hash, fresh))
                rehash = (account.password, cast(PasswordHash, replacement))
        token = secrets.token_urlsafe(32)

        def open_session(
            tx: Tx,
            token: str = token,
            new_hash: PasswordHash | None = new_hash,
            rehash: tuple[PasswordHash, PasswordHash] | None = rehash,
        ) -> Outcome:
            if rehash is not None:
                _replace_hash(tx, key, *rehash)
            return _open_session(tx, world, key, name, new_hash, token, now, session_ttl)

        try:
            return store.transaction(open_session)
        except _NameTaken:
            continue  # verify against the account that won the race
    return Outcome(ErrorReply(code="unavailable", message="Please try again."))


def _replace_hash(tx: Tx, key: str, verified: PasswordHash, fresh: PasswordHash) -> None:
    """Store ``fresh`` in place of ``verified``, unless the hash changed meanwhile."""
    state = GameState(tx)
    account = state.account(key)
    if account is not None and account.password == verified:
        state.put_account(account.model_copy(update={"password": fresh}))


#: The answer to a new name while registrations are paused (the front's budget is spent).
NO_REGISTRATION = ErrorReply(
    code="rate_limited", message="Too many new accounts right now; please try again in a minute."
)


def _open_session(
    tx: Tx,
    world: World,
    key: str,
    name: str,
    new_hash: PasswordHash | None,
    token: str,
    now: float,
    session_ttl: float,
) -> Outcome:
    state = GameState(tx)
    if new_hash is not None:
        if state.account(key) is not None:
            raise _NameTaken
        state.put_account(Account(key=key, name=name, password=new_hash, created=now))
    topic = private_topic(token)
    session = SessionRecord(
        key=session_key(token),
        player=key,
        private_topic=topic,
        created=now,
        expires_at=now + session_ttl,
    )
    state.put_session(session)
    player = state.player(key) or PlayerRecord(key=key, name=name, room=world.start_room)
    if player.room not in world.rooms:
        player = player.model_copy(update={"room": world.start_room})
    drafts: list[EventDraft] = []
    previous = state.session(player.session) if player.session else None
    if player.online and previous is not None and previous.is_live(now):
        # Taking over a live session: tell the old connection, but nobody else saw a change.
        state.put_session(previous.model_copy(update={"ended": True}))
        drafts.append(
            EventDraft(
                previous.private_topic, "session_replaced", "You logged in elsewhere.", player.name
            )
        )
        player = state.put_player(
            player.model_copy(update={"session": session.key, "private_topic": topic})
        )
    else:
        if previous is not None:
            state.put_session(previous.model_copy(update={"ended": True}))
        player, entered = enter_world(
            state, player.model_copy(update={"session": session.key, "private_topic": topic})
        )
        drafts.extend(entered)
    drafts.extend(deliver_pages(state, player))  # pages left while the player was away
    events = publish(state, drafts, now)
    text = f"{world.world.welcome}\n\n{describe_room(state, world, player.room, key)}"
    reply = LoginReply(
        token=token,
        player=player.name,
        room=player.room,
        private_topic=topic,
        topics=session_topics(player.room, token),
        text=text,
        created=new_hash is not None,
    )
    return Outcome(reply, events, heads=heads(state, _public_topics(player.room)))


def resume(
    store: Store,
    world: World,
    token: str,
    *,
    now: float | None = None,
    session_ttl: float = DEFAULT_SESSION_TTL,
) -> Outcome:
    """Re-attach to a live session (after a reconnect); no events, the player never left."""
    now = time.time() if now is None else now
    try:
        ResumeRequest(token=token)
    except ValidationError as exc:
        return Outcome(_bad_request(exc))

    def attach(tx: Tx) -> Outcome:
        state = GameState(tx)
        try:
            identity = authenticate(state, token, now)
        except Unauthorized:
            return Outcome(unauthorized_reply())
        refresh(state, identity.session, now, session_ttl)
        player = identity.player
        return Outcome(
            LoginReply(
                token=token,
                player=player.name,
                room=player.room,
                private_topic=identity.session.private_topic,
                topics=session_topics(player.room, token),
                text=describe_room(state, world, player.room, player.key),
            ),
            heads=heads(state, _public_topics(player.room)),
        )

    return store.transaction(attach)


def _public_topics(room: str) -> tuple[str, str]:
    """The public topics a session follows: where it stands is sent with its login's reply."""
    return WORLD_TOPIC, room_topic(room)


def unauthorized_reply() -> ErrorReply:
    return ErrorReply(code="unauthorized", message="No such session; please log in again.")
