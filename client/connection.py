"""A :class:`GameSession` that survives the server going away, for interactive clients.

:class:`Connection` logs in, runs actions and watches the front with pings while idle. When the
front stops answering it reports "reconnecting...", retries with back-off, and when the front is
back it resumes the session with its token (no new login); if the token is no longer known, it
logs in again with the remembered password. An action that was cut off is then resent with its
same action id, so it happens once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gameserver.protocol import LoginReply, Reply

from .session import GameSession, RequestRefused, ServerUnavailable, SessionError

CONNECTED, RECONNECTING, OFFLINE = "connected", "reconnecting...", "offline"
TAKEN_OVER = (
    "This account logged in elsewhere, so this client stops."
    " Run play again to take the session back."
)
BACKOFF_INIT_S = 0.25
BACKOFF_MAX_S = 4.0


class TakenOver(SessionError):
    """The player logged in from another client, which now has the session."""


class Connection:
    """Login, actions and liveness for one player; ``on_change`` is called on state changes."""

    def __init__(
        self,
        actions: str,
        updates: str,
        name: str,
        password: str,
        *,
        timeout: float = 2.0,
        retries: int = 1,
        ping_interval: float = 1.0,
        server_key: bytes | None = None,
        updates_key: bytes | None = None,
        on_change: Callable[[str, str], None] = lambda state, message: None,
    ) -> None:
        self.session = GameSession(
            actions,
            updates,
            timeout=timeout,
            retries=retries,
            server_key=server_key,
            updates_key=updates_key,
        )
        self.name, self._password = name, password
        self.ping_interval = ping_interval
        self.on_change = on_change
        self.state = OFFLINE
        self.rtt_ms: float | None = None
        self._back = asyncio.Event()  # set while connected
        self._lock = asyncio.Lock()  # one reconnect at a time
        self._last_ok = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None

    def _set(self, state: str, message: str = "") -> None:
        if state != self.state:
            self.state = state
            if state == CONNECTED:
                self._back.set()
            else:
                self._back.clear()
            self.on_change(state, message)

    @property
    def password(self) -> str:
        return self._password

    def use_password(self, password: str) -> None:
        """The password to log in with (and to log in again with after an outage)."""
        self._password = password

    async def login(self, *, must_exist: bool = False) -> LoginReply:
        """First login; raises RequestRefused (bad password, ``no_account`` when
        ``must_exist``...) or ServerUnavailable."""
        start = time.monotonic()
        reply = await self.session.login(self.name, self._password, must_exist=must_exist)
        self._ok(start)
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch())
        return reply

    def _ok(self, start: float) -> None:
        self._last_ok = time.monotonic()
        self.rtt_ms = (self._last_ok - start) * 1000
        self._set(CONNECTED)

    async def act(self, text: str) -> Reply:
        """Run a command line, waiting out outages; the action id stays the same throughout."""
        action_id = self.session.new_action_id()
        while True:
            await self._back.wait()
            start = time.monotonic()
            try:
                reply = await self.session.act(text, action_id=action_id)
            except ServerUnavailable:
                await self._reconnect("the server does not answer")
                continue
            except RequestRefused as exc:
                if exc.code != "unauthorized":
                    raise
                if self.session.replaced or await self._taken_over():
                    # Logged in elsewhere: logging in again would take it back, and the two
                    # clients would go on taking it from each other on every command.
                    self._set(OFFLINE)
                    raise TakenOver(TAKEN_OVER) from None
                self._set(RECONNECTING, "the session expired; logging in again")
                await self._reconnect("")
                continue
            self._ok(start)
            if reply.session_ended:
                self._set(OFFLINE)
            return reply

    async def _taken_over(self) -> bool:
        """Whether the session ended because this player logged in elsewhere: its private
        topic says so (an ended session may still read it)."""
        topic = self.session.private_topic
        if topic is None or self.session.token is None:
            return False
        try:
            reply = await self.session.catch_up(topic, 0)
        except SessionError:
            return False
        return any(event.kind == "session_replaced" for event in reply.events)

    async def change_password(self, old: str, new: str) -> None:
        """Log in again with ``old`` and set ``new``: this session's token changes, nothing
        else (the takeover of one's own session is silent). Raises RequestRefused."""
        await self.session.login(self.name, old, new_password=new)
        self._password = new

    async def ping(self) -> bool:
        start = time.monotonic()
        try:
            await self.session.ping()
        except SessionError:
            return False
        self.rtt_ms = (time.monotonic() - start) * 1000
        self._last_ok = time.monotonic()
        return True

    async def _watch(self) -> None:
        """While idle, ping the front; a missed pong starts reconnecting."""
        while True:
            await asyncio.sleep(self.ping_interval)
            if self.state != CONNECTED or time.monotonic() - self._last_ok < self.ping_interval:
                continue
            if not await self.ping():
                await self._reconnect("the server does not answer")

    async def _reconnect(self, why: str) -> None:
        if self._lock.locked():  # someone else is on it
            async with self._lock:
                return
        async with self._lock:
            if self.state == CONNECTED and not why:
                return
            self._set(RECONNECTING, why)
            backoff = BACKOFF_INIT_S
            while True:
                if await self.ping():
                    try:
                        await self._rejoin()
                        return
                    except ServerUnavailable:
                        pass
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _rejoin(self) -> None:
        """Resume with the token; log in again if the server no longer knows it."""
        start = time.monotonic()
        token = self.session.token
        message = "reconnected: the session resumed"
        try:
            if token is None:
                raise LookupError
            await self.session.resume(token)
        except (RequestRefused, LookupError):
            await self.session.login(self.name, self._password)
            message = "reconnected: logged in again"
        self._last_ok = time.monotonic()
        self.rtt_ms = (self._last_ok - start) * 1000
        self._set(CONNECTED, message)

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        await self.session.close()
        self._set(OFFLINE)
