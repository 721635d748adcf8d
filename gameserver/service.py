"""The worker-facing facade: one object that turns requests into replies and events.

A worker process holds one :class:`GameService` (its own store connection, the shared world)
and feeds it raw request bytes; it never needs to know which command did what::

    service = GameService.open("sqlite:///game.db")
    outcome = service.handle_bytes(frame)
    send(outcome.reply_bytes()); for topic, payload in outcome.publications(): pub(topic, payload)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .accounts import DEFAULT_SESSION_TTL, Hashing, LoginSteps, login_steps, resume, run_inline
from .catchup import catchup
from .commands import CommandSet, default_commands
from .events import Outcome
from .moderation import login_refusal
from .passwords import DEFAULT_POLICY, PasswordPolicy
from .protocol import (
    ActionRequest,
    CatchupRequest,
    ErrorReply,
    Event,
    LoginRequest,
    ProtocolError,
    Request,
    ResumeRequest,
    decode_request,
)
from .rules import execute_request
from .seed import seed_world
from .store import open_store
from .store.base import Store, StoreBusy, StoreError
from .ticker import tick
from .world import World, load_world

log = logging.getLogger(__name__)


class GameService:
    """Stateless between calls apart from its store connection, so any number of workers
    (threads with their own service, or processes) can serve the same store."""

    def __init__(
        self,
        store: Store,
        world: World,
        *,
        commands: CommandSet | None = None,
        session_ttl: float = DEFAULT_SESSION_TTL,
        passwords: PasswordPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.world = world
        self.commands = commands or default_commands()
        self.session_ttl = session_ttl
        self.passwords = passwords
        self.clock = clock

    @classmethod
    def open(cls, store_url: str, world_path: str | Path | None = None) -> GameService:
        """Open the store, load the world (default: the packaged one) and seed what is missing."""
        world = load_world(world_path)
        store = open_store(store_url)
        seed_world(store, world)
        return cls(store, world)

    def handle_bytes(self, raw: bytes) -> Outcome:
        """Decode and handle one request; bad input becomes an ``ErrorReply``, never an
        exception."""
        try:
            request = decode_request(raw)
        except ProtocolError as exc:
            return Outcome(exc.to_reply())
        return self.handle(request)

    def handle(self, request: Request, *, may_register: bool = True) -> Outcome:
        """Handle a decoded request. Store trouble and bugs become an ``ErrorReply``; the
        request may then be retried with the same action id. ``may_register=False``: a login
        may not create an account (the front's registration budget is spent)."""
        now = self.clock()
        try:
            return self._dispatch(request, now, may_register)
        except Exception as exc:
            return self._failed(request, exc)

    def login_steps(self, request: LoginRequest, *, may_register: bool = True) -> LoginSteps:
        """A login as steps (accounts.login_steps), for a driver that runs the password
        hashing elsewhere; move it on with :meth:`advance`, never by hand."""
        return self._login(request, self.clock(), may_register)

    def advance(self, request: Request, steps: LoginSteps, result: object) -> Hashing | Outcome:
        """Resume a login's steps with the last Hashing's result (None to start): its next
        Hashing, or its Outcome; store trouble and bugs become an answer, as in handle()."""
        try:
            return steps.send(result)
        except StopIteration as done:
            return done.value
        except Exception as exc:
            return self._failed(request, exc)

    @staticmethod
    def _failed(request: Request, exc: Exception) -> Outcome:
        if isinstance(exc, StoreBusy):
            return Outcome(ErrorReply(code="unavailable", message="The world is busy; retry."))
        if isinstance(exc, StoreError):
            log.error("store failure handling %s", request.type, exc_info=exc)
            return Outcome(ErrorReply(code="unavailable", message="Storage is unavailable."))
        log.error("bug handling %s", request.type, exc_info=exc)
        return Outcome(ErrorReply(code="internal", message="Something went wrong."))

    def _dispatch(self, request: Request, now: float, may_register: bool = True) -> Outcome:
        match request:
            case ActionRequest():
                return execute_request(
                    self.store,
                    self.world,
                    request,
                    now=now,
                    commands=self.commands,
                    session_ttl=self.session_ttl,
                )
            case LoginRequest():
                return run_inline(self._login(request, now, may_register))
            case ResumeRequest():
                return resume(
                    self.store, self.world, request.token, now=now, session_ttl=self.session_ttl
                )
            case CatchupRequest():
                return catchup(self.store, request.token, request.topic, request.since_seq, now=now)
        raise AssertionError(f"unhandled request {request!r}")

    def _login(self, request: LoginRequest, now: float, may_register: bool) -> LoginSteps:
        if (refused := login_refusal(self.store, request.name)) is not None:
            return Outcome(refused)  # banned, or closed for maintenance
        return (
            yield from login_steps(
                self.store,
                self.world,
                request.name,
                request.password,
                must_exist=request.must_exist,
                new_password=request.new_password,
                now=now,
                session_ttl=self.session_ttl,
                passwords=self.passwords,
                may_register=may_register,
            )
        )

    def tick(self) -> list[Event]:
        """Advance the world clock (idempotent per turn); publish the returned events."""
        return tick(self.store, self.world, self.clock())

    def close(self) -> None:
        self.store.close()
