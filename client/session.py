"""The network half of a Crossroads client: log in, act, and follow what happens.

:class:`GameSession` (asyncio) talks to a front server on two sockets:

* **requests** go through the Lazy Pirate client (bounded wait, resend the very same frames on
  a fresh socket, give up after a few tries). Each action carries a client-made action id, so a
  resend after a lost reply is applied once and answered with the stored result. "Busy" and
  "rate limited" answers are retried (same id) with back-off for up to ``busy_budget`` seconds.
* **updates** come on a SUB socket that follows the player: the world topic, the current room
  (re-subscribed on every move) and the private topic. Every event has a per-topic sequence
  number; :class:`TopicTrack` delivers them in order, drops duplicates and notices gaps, which
  are repaired by a catch-up request. Private topics only announce "seq N exists"; the content
  is always fetched by catch-up, which requires the session token.

On entering a room the reply's marks give the seq of the player's own arrival; the session
subscribes, then catches up from there, so nothing between "you enter the hall" and the hall's
next event can go missing. Events are read with ``async for event in session`` or
:meth:`GameSession.next_event`; :class:`SyncGameSession` wraps it all for blocking code.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

import engine
import engine.asyncio as ezmq
from engine.patterns.lazy_pirate import AsyncLazyPirateClient, RequestFailed
from gameserver.broadcast import Notice, decode_publication, wire_topic
from gameserver.protocol import (
    ActionRequest,
    CatchupReply,
    CatchupRequest,
    ErrorReply,
    Event,
    LoginReply,
    LoginRequest,
    Message,
    ProtocolError,
    Reply,
    ResumeRequest,
    decode_reply,
    encode,
)
from gameserver.topics import WORLD_TOPIC, room_topic

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Per try: generous enough for a loaded server, and a worker's death is noticed by the
#: front within ~3 s (heartbeats), after which the job runs elsewhere.
DEFAULT_TIMEOUT_S = 4.0
#: Resends after the first try, each on a fresh socket.
DEFAULT_RETRIES = 3
#: How long "busy"/"rate limited" answers are retried before they reach the caller.
BUSY_BUDGET_S = 15.0
BUSY_BACKOFF_INIT_S = 0.05
BUSY_BACKOFF_MAX_S = 1.0
#: A gap on a public topic may just be two workers' events published out of order: wait this
#: long for the missing event before asking for it.
REPAIR_GRACE_S = 0.1
#: Undelivered events kept for a caller that does not read them; the oldest go first.
MAX_QUEUED_EVENTS = 10_000
RETRYABLE = frozenset({"unavailable", "rate_limited"})


class SessionError(Exception):
    """Base of the session's errors."""


class ServerUnavailable(SessionError):
    """No answer after every try: the front is down or unreachable."""


class RequestRefused(SessionError):
    """The server answered with an error (``code`` as in the protocol's ErrorCode)."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(f"{reply.code}: {reply.message}")
        self.reply = reply
        self.code = reply.code


@dataclass
class TopicTrack:
    """In-order delivery for one topic: duplicates dropped, gaps noticed (no I/O).

    ``cursor`` is the last seq delivered (None: not known yet, events are held). ``wanted`` is
    the highest seq known to exist; ``wanted > cursor`` means a catch-up is needed.
    """

    topic: str
    cursor: int | None = None
    wanted: int = 0
    held: dict[int, Event] = field(default_factory=dict)
    repairing: bool = False
    lost: int = 0  # events that fell out of the server's log before they could be fetched

    def offer(self, event: Event) -> list[Event]:
        """A live event; returns what can now be delivered, in order."""
        if self.cursor is not None and event.seq <= self.cursor:
            return []
        self.held[event.seq] = event
        self.wanted = max(self.wanted, event.seq)
        return self._flush()

    def notice(self, seq: int) -> None:
        """Seq ``seq`` exists, content unknown (private topics)."""
        self.wanted = max(self.wanted, seq)

    @property
    def needs_repair(self) -> bool:
        return self.cursor is not None and self.wanted > self.cursor and not self.repairing

    def start_after_history(self, history: list[Event]) -> list[Event]:
        """Unknown cursor: what the log held is the past; deliver only what comes after it."""
        self.cursor = max((e.seq for e in history), default=0)
        self.held = {s: e for s, e in self.held.items() if s > self.cursor}
        self.wanted = max(self.wanted, self.cursor)
        return self._flush()

    def repaired(self, events: list[Event], truncated: bool, asked_upto: int) -> list[Event]:
        """Merge a catch-up answer. Holes the log no longer covers (below ``asked_upto``, which
        was known to exist when asking) are skipped and counted as lost."""
        for event in events:
            if self.cursor is None or event.seq > self.cursor:
                self.held[event.seq] = event
                self.wanted = max(self.wanted, event.seq)
        out = self._flush()
        if self.cursor is not None and (truncated or self.cursor < asked_upto):
            upto = min(self.held, default=asked_upto + 1) - 1
            if upto > self.cursor and upto <= asked_upto:
                self.lost += upto - self.cursor
                log.warning(
                    "%d event(s) of %s are gone from the log", upto - self.cursor, self.topic
                )
                self.cursor = upto
                out += self._flush()
        return out

    def _flush(self) -> list[Event]:
        out: list[Event] = []
        if self.cursor is None:
            return out
        while self.cursor + 1 in self.held:
            self.cursor += 1
            out.append(self.held.pop(self.cursor))
        return out


def _parse(frames: list[bytes]) -> tuple[Any, dict[str, int]]:
    reply = decode_reply(frames[0])
    marks: dict[str, int] = {}
    if len(frames) > 1:
        raw = orjson.loads(frames[1])
        if isinstance(raw, dict):
            marks = {k: v for k, v in raw.items() if isinstance(k, str) and type(v) is int}
    return reply, marks


def _validator(accept: Callable[[dict[str, Any]], bool]) -> Callable[[list[bytes]], bool]:
    def check(frames: list[bytes]) -> bool:
        try:
            obj = orjson.loads(frames[0])
        except orjson.JSONDecodeError:
            return False
        return isinstance(obj, dict) and (obj.get("type") == "error" or accept(obj))

    return check


class GameSession:
    """One player's connection; create and use it on one event loop."""

    def __init__(
        self,
        actions: str,
        updates: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        busy_budget: float = BUSY_BUDGET_S,
        context: ezmq.Context | None = None,
    ) -> None:
        self._own_context = context is None
        self.context = context or ezmq.Context()
        pirate = dict(timeout=timeout, retries=retries, context=self.context)
        self._requests = AsyncLazyPirateClient(actions, **pirate)
        self._catchups = AsyncLazyPirateClient(actions, **pirate)  # repairs never wait on acts
        self._request_lock = asyncio.Lock()  # a Lazy Pirate client asks one thing at a time
        self._catchup_lock = asyncio.Lock()
        self._sub = self.context.socket(engine.SUB)
        self._sub.connect(updates)
        self.busy_budget = busy_budget
        self.tracks: dict[str, TopicTrack] = {}
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(6)  # action ids must be unique across sessions too
        self.token: str | None = None
        self.player: str | None = None
        self.room: str | None = None
        self.private_topic: str | None = None
        self.replaced = False  # another login took this player over
        self.ended = False  # the server no longer knows the session (replaced, quit, expired)
        self.dropped = 0  # events discarded because nobody read them
        self._closed = False

    # -- requests -------------------------------------------------------------------------------

    async def _call(
        self, client: AsyncLazyPirateClient, message: Message, accept: Callable[[dict], bool]
    ) -> tuple[Any, dict[str, int]]:
        body = encode(message)
        deadline = time.monotonic() + self.busy_budget
        backoff = BUSY_BACKOFF_INIT_S
        while True:
            try:
                frames = await client.request(body, validator=_validator(accept))
            except RequestFailed as exc:
                raise ServerUnavailable(f"no answer from {client.endpoint}: {exc}") from None
            reply, marks = _parse(frames)
            retry = isinstance(reply, ErrorReply) and reply.code in RETRYABLE
            if not retry or time.monotonic() + backoff > deadline:
                return reply, marks
            await asyncio.sleep(backoff * (0.5 + secrets.randbelow(1000) / 1000))
            backoff = min(backoff * 2, BUSY_BACKOFF_MAX_S)

    async def login(self, name: str, password: str) -> LoginReply:
        """Log in (the first login registers the name); raises RequestRefused on refusal."""
        request = LoginRequest(name=name, password=password)
        reply, marks = await self._request(request, lambda o: o.get("type") == "login_ok")
        return self._logged_in(reply, marks, fresh=True)

    async def resume(self, token: str) -> LoginReply:
        """Re-attach to a live session, e.g. after the server restarted."""
        request = ResumeRequest(token=token)
        reply, marks = await self._request(request, lambda o: o.get("type") == "login_ok")
        return self._logged_in(reply, marks, fresh=False)

    async def _request(
        self, message: Message, accept: Callable[[dict], bool]
    ) -> tuple[Any, dict[str, int]]:
        async with self._request_lock:
            return await self._call(self._requests, message, accept)

    def new_action_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    async def act(self, text: str, *, action_id: str | None = None) -> Reply:
        """Run a command line. A refused command is a Reply with ``ok`` False; an ErrorReply
        raises RequestRefused. Resends reuse the action id, so the effect happens once."""
        if self.token is None:
            raise SessionError("not logged in")
        action_id = action_id or self.new_action_id()
        request = ActionRequest(token=self.token, action_id=action_id, text=text)
        reply, marks = await self._request(
            request, lambda o: o.get("type") == "reply" and o.get("action_id") == action_id
        )
        if isinstance(reply, ErrorReply):
            raise RequestRefused(reply)
        assert isinstance(reply, Reply)
        if reply.session_ended:
            self._unfollow_all()
            self.token, self.ended = None, True
        elif reply.room and reply.room != self.room:
            if self.room is not None:
                self._unfollow(room_topic(self.room))
            self.room = reply.room
            topic = room_topic(reply.room)
            self._follow(topic, marks.get(topic))
        return reply

    async def catch_up(self, topic: str, since_seq: int) -> CatchupReply:
        if self.token is None:
            raise SessionError("not logged in")
        request = CatchupRequest(token=self.token, topic=topic, since_seq=since_seq)
        async with self._catchup_lock:
            reply, _ = await self._call(
                self._catchups,
                request,
                lambda o: o.get("type") == "catchup" and o.get("topic") == topic,
            )
        if isinstance(reply, ErrorReply):
            raise RequestRefused(reply)
        return reply

    # -- following topics -----------------------------------------------------------------------

    def _logged_in(self, reply: Any, marks: dict[str, int], *, fresh: bool) -> LoginReply:
        if isinstance(reply, ErrorReply):
            raise RequestRefused(reply)
        assert isinstance(reply, LoginReply)
        self._unfollow_all()
        self.token, self.player, self.room = reply.token, reply.player, reply.room
        self.private_topic = reply.private_topic
        self.replaced = self.ended = False
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_updates())
        room = room_topic(reply.room)
        self._follow(WORLD_TOPIC, marks.get(WORLD_TOPIC))
        self._follow(room, marks.get(room))
        # A new session's private topic starts empty; a resumed one's past stays past.
        self._follow(reply.private_topic, 0 if fresh else None)
        return reply

    def _follow(self, topic: str, cursor: int | None) -> None:
        track = TopicTrack(topic, cursor=cursor, wanted=cursor or 0)
        self.tracks[topic] = track
        self._sub.subscribe(wire_topic(topic))
        # Subscribing takes effect at the front a moment later: ask for what came meanwhile.
        self._spawn(self._repair(track, initial=True))

    def _unfollow(self, topic: str) -> None:
        if self.tracks.pop(topic, None) is not None:
            self._sub.unsubscribe(wire_topic(topic))

    def _unfollow_all(self) -> None:
        for topic in list(self.tracks):
            self._unfollow(topic)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_updates(self) -> None:
        while True:
            frames = await self._sub.recv_multipart()
            if len(frames) != 2:
                continue
            try:
                publication = decode_publication(frames[0], frames[1])
            except ProtocolError:
                log.warning("ignored a malformed publication")
                continue
            track = self.tracks.get(publication.topic)
            if track is None:
                continue  # a topic just left
            if track.cursor is None and not track.repairing:
                self._spawn(self._repair(track, initial=True))  # the first try failed
            if isinstance(publication, Notice):
                track.notice(publication.seq)
                if track.needs_repair:
                    self._spawn(self._repair(track))
                continue
            self._deliver(track.offer(publication))
            if track.needs_repair:
                self._spawn(self._repair(track, grace=REPAIR_GRACE_S))

    async def _repair(self, track: TopicTrack, *, initial: bool = False, grace: float = 0) -> None:
        """Catch up on ``track`` until nothing known is missing (or it is no longer followed)."""
        if track.repairing:
            return
        track.repairing = True
        try:
            if grace:
                await asyncio.sleep(grace)
            while self.tracks.get(track.topic) is track:
                if not initial and track.cursor is not None and track.wanted <= track.cursor:
                    break
                asked_upto = track.wanted
                reply = await self.catch_up(track.topic, track.cursor or 0)
                if track.cursor is None:
                    self._deliver(track.start_after_history(reply.events))
                else:
                    self._deliver(track.repaired(reply.events, reply.truncated, asked_upto))
                initial = False
        except RequestRefused as exc:
            # "forbidden" after walking on: that room is not ours to read any more.
            # "unauthorized": the session is over, e.g. taken over by a login elsewhere (whose
            # notice on the private topic can no longer be fetched with this token).
            log.debug("catch-up of %s refused: %s", track.topic, exc)
            if exc.code == "unauthorized":
                self.ended = True
        except ServerUnavailable as exc:
            log.warning("catch-up of %s failed: %s", track.topic, exc)
        finally:
            track.repairing = False

    def _deliver(self, events: list[Event]) -> None:
        for event in events:
            if event.kind == "session_replaced" and event.topic == self.private_topic:
                self.replaced = True
            if self._queue.qsize() >= MAX_QUEUED_EVENTS:
                self._queue.get_nowait()
                self.dropped += 1
            self._queue.put_nowait(event)

    # -- reading events -------------------------------------------------------------------------

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event in arrival order; raises TimeoutError, or SessionError once closed."""
        event = await asyncio.wait_for(self._queue.get(), timeout)
        if event is None:
            raise SessionError("session closed")
        return event

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float) -> Event:
        """The first event matching ``predicate`` (earlier ones are consumed)."""
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next_event(max(0.0, deadline - time.monotonic()))
            if predicate(event):
                return event

    def pending_events(self) -> list[Event]:
        """Everything delivered and not yet read, without waiting."""
        out = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is not None:
                out.append(event)
        return out

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            try:
                yield await self.next_event()
            except SessionError:
                return

    @property
    def lost(self) -> int:
        return sum(track.lost for track in self.tracks.values())

    # -- lifetime -------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = [*self._tasks, *([self._reader] if self._reader else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._requests.close()
        self._catchups.close()
        self._sub.close(linger=0)
        if self._own_context:
            self.context.destroy(linger=0)
        self._queue.put_nowait(None)

    async def __aenter__(self) -> GameSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SyncGameSession:
    """A blocking wrapper: a GameSession on its own event loop in a background thread."""

    def __init__(self, actions: str, updates: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def make() -> GameSession:
            return GameSession(actions, updates, **options)

        self.session = self._run(make())

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def login(self, name: str, password: str) -> LoginReply:
        return self._run(self.session.login(name, password))

    def resume(self, token: str) -> LoginReply:
        return self._run(self.session.resume(token))

    def act(self, text: str, *, action_id: str | None = None) -> Reply:
        return self._run(self.session.act(text, action_id=action_id))

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float) -> Event:
        return self._run(self.session.wait_for(predicate, timeout))

    def pending_events(self) -> list[Event]:
        async def drain() -> list[Event]:
            return self.session.pending_events()

        return self._run(drain())

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self.session.close())
            self._run(_cancel_leftovers())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> SyncGameSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _cancel_leftovers() -> None:
    """End what closed sockets left on the loop (reconnect timers), so it can close quietly."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
