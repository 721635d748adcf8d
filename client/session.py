"""The asyncio face of a Crossroads client: log in, act, and follow what happens.

:class:`GameSession` is a thin driver of :class:`client.protocol.ClientCore`, which holds the
protocol (action ids, retries, reply matching, topic following, gap repair) with no I/O. The
session owns the sockets and the waiting:

* a DEALER for requests, replaced by a fresh one whenever the core says so (Lazy Pirate);
* a SUB for updates, whose subscriptions the core decides;
* one reader task per socket feeds what arrives to the core, and a loop timer wakes it at its
  next deadline; after each of these, and after each request, the core's outbox is carried
  out: frames sent, subscriptions changed, events queued, waiting callers woken.

Events are read with ``async for event in session`` or :meth:`GameSession.next_event`;
:class:`SyncGameSession` wraps it all for blocking code.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import engine
import engine.asyncio as ezmq
from gameserver.protocol import CatchupReply, CatchupRequest, Event, LoginReply, Pong, Reply

from .protocol import (
    BUSY_BUDGET_S,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    MAX_ANSWER_BYTES,
    MAX_PUBLICATION_BYTES,
    Call,
    ClientCore,
    RequestRefused,
    ServerUnavailable,
    SessionError,
)
from .tracks import TopicTrack

__all__ = [
    "CatchupReply",
    "GameSession",
    "LoginReply",
    "RequestRefused",
    "ServerUnavailable",
    "SessionError",
    "SyncGameSession",
    "TopicTrack",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

#: Undelivered events kept for a caller that does not read them; the oldest go first.
MAX_QUEUED_EVENTS = 10_000
#: Messages taken from one socket before the core's outbox is carried out.
READ_BATCH = 256


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
        server_key: bytes | None = None,
        updates_key: bytes | None = None,
        context: ezmq.Context | None = None,
    ) -> None:
        self.core = ClientCore(timeout=timeout, retries=retries, busy_budget=busy_budget)
        self.endpoint = actions
        self._own_context = context is None
        self.context = context or ezmq.Context()
        if server_key is not None:
            # CURVE to a secure front (known_hosts.py finds its key); a fresh key of our own:
            # the front admits any player key, the password authenticates.
            self.context.curve_serverkey = server_key
            self.context.curve_publickey, self.context.curve_secretkey = engine.curve_keypair()
        self._dealer = self._open_dealer()
        self._sub = self.context.socket(engine.SUB)
        self._sub.setsockopt(engine.MAXMSGSIZE, MAX_PUBLICATION_BYTES)
        if updates_key is not None and updates_key != server_key:
            # Updates from a relay (its own key) while actions go to the front (the front's).
            self._sub.curve_serverkey = updates_key
            if server_key is None:
                self._sub.curve_publickey, self._sub.curve_secretkey = engine.curve_keypair()
        self._sub.connect(updates)
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._waiters: dict[Call, asyncio.Future[None]] = {}
        self._answers: asyncio.Task[None] | None = None
        self._updates: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.dropped = 0  # events discarded because nobody read them
        self._closed = False

    # -- what the core knows --------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        return self.core.token

    @property
    def player(self) -> str | None:
        return self.core.player

    @property
    def room(self) -> str | None:
        return self.core.room

    @property
    def private_topic(self) -> str | None:
        return self.core.private_topic

    @property
    def replaced(self) -> bool:
        """Another login took this player over."""
        return self.core.replaced

    @property
    def ended(self) -> bool:
        """The server no longer knows the session (replaced, quit, expired)."""
        return self.core.ended

    @property
    def tracks(self) -> dict[str, TopicTrack]:
        return self.core.tracks

    @property
    def lost(self) -> int:
        return self.core.lost

    def new_action_id(self) -> str:
        return self.core.new_action_id()

    # -- requests -------------------------------------------------------------------------------

    async def login(
        self,
        name: str,
        password: str,
        *,
        must_exist: bool = False,
        new_password: str | None = None,
    ) -> LoginReply:
        """Log in (the first login registers the name unless ``must_exist``; ``new_password``
        changes the password); raises RequestRefused on refusal."""
        return await self._ask(
            lambda now: self.core.login(
                name, password, now, must_exist=must_exist, new_password=new_password
            ),
            LoginReply,
        )

    async def resume(self, token: str) -> LoginReply:
        """Re-attach to a live session, e.g. after the server restarted."""
        return await self._ask(lambda now: self.core.resume(token, now), LoginReply)

    async def act(self, text: str, *, action_id: str | None = None) -> Reply:
        """Run a command line. A refused command is a Reply with ``ok`` False; an ErrorReply
        raises RequestRefused. Resends reuse the action id, so the effect happens once."""
        return await self._ask(lambda now: self.core.act(text, now, action_id=action_id), Reply)

    async def catch_up(self, topic: str, since_seq: int) -> CatchupReply:
        """The events of ``topic`` after ``since_seq`` (gap repair does this by itself)."""
        return await self._ask(lambda now: self.core.catch_up(topic, since_seq, now), CatchupReply)

    async def ping(self) -> Pong:
        """One round trip to the front (one try); raises ServerUnavailable."""
        return await self._ask(self.core.ping, Pong)

    def on_catch_up(self, request: CatchupRequest, reply: CatchupReply) -> None:
        """Called with every catch-up answered, the session's own repairs included; override
        it to observe them."""

    async def _ask(self, make: Callable[[float], Call], kind: type[R]) -> R:
        if self._closed:
            raise SessionError("session closed")
        self._start_readers()
        call = make(self._now())  # a bad request raises here, before anything is sent
        await self._flush()
        if not call.done:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters[call] = waiter
            try:
                await waiter
            except asyncio.CancelledError:
                self.core.abandon(call, self._now())
                self._spawn(self._flush())
                raise
            finally:
                self._waiters.pop(call, None)
        reply = call.result()
        assert isinstance(reply, kind)
        return reply

    # -- carrying out what the core says --------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _open_dealer(self) -> ezmq.Socket:
        sock = self.context.socket(engine.DEALER)
        sock.linger = 0  # an unanswered request must never hold up close or exit
        sock.setsockopt(engine.MAXMSGSIZE, MAX_ANSWER_BYTES)
        sock.connect(self.endpoint)
        return sock

    def _start_readers(self) -> None:
        if self._answers is None:
            self._answers = asyncio.create_task(self._read_answers(self._dealer))
            self._updates = asyncio.create_task(self._read_updates())

    async def _read_answers(self, sock: ezmq.Socket) -> None:
        while sock is self._dealer:
            batch = [await sock.recv_multipart()]
            batch += await _more(sock)
            now = self._now()
            for frames in batch:
                self.core.receive_answer(frames, now)
            await self._flush()  # may replace the dealer, which ends this loop

    async def _read_updates(self) -> None:
        while True:
            batch = [await self._sub.recv_multipart()]
            batch += await _more(self._sub)
            now = self._now()
            for frames in batch:
                self.core.receive_publication(frames, now)
            await self._flush()

    async def _flush(self) -> None:
        # Sends use DONTWAIT, so this never suspends: two flushes cannot interleave.
        out = self.core.take()
        if out.reset:
            self._replace_dealer()
        for subscribe, topic in out.subscriptions:
            if subscribe:
                self._sub.subscribe(topic)
            else:
                self._sub.unsubscribe(topic)
        for frames in out.send:
            try:
                await self._dealer.send_multipart(frames, engine.DONTWAIT)
            except engine.Again:
                pass  # the queue to an absent front is full: this try's timeout resends it
        for event in out.events:
            if self._queue.qsize() >= MAX_QUEUED_EVENTS:
                self._queue.get_nowait()
                self.dropped += 1
            self._queue.put_nowait(event)
        for call in out.done:
            if isinstance(call.request, CatchupRequest) and isinstance(call.reply, CatchupReply):
                self.on_catch_up(call.request, call.reply)
            waiter = self._waiters.get(call)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._arm_timer()

    def _replace_dealer(self) -> None:
        old, reader = self._dealer, self._answers
        self._dealer = self._open_dealer()
        self._answers = asyncio.create_task(self._read_answers(self._dealer))
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        old.close(linger=0)

    def _arm_timer(self) -> None:
        when = self.core.next_deadline()
        if when == self._timer_at or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        loop = asyncio.get_running_loop()
        self._timer = None if when is None else loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.core.tick(self._now())
        self._spawn(self._flush())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reading events -------------------------------------------------------------------------

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event in arrival order; raises TimeoutError, or SessionError once closed."""
        event = await asyncio.wait_for(self._queue.get(), timeout)
        if event is None:
            raise SessionError("session closed")
        return event

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float) -> Event:
        """The first event matching ``predicate`` (earlier ones are consumed)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            event = await self.next_event(left)
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

    # -- lifetime -------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        tasks = [t for t in (*self._tasks, self._answers, self._updates) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(SessionError("session closed"))
        self._dealer.close(linger=0)
        self._sub.close(linger=0)
        if self._own_context:
            self.context.destroy(linger=0)
        self._queue.put_nowait(None)

    async def __aenter__(self) -> GameSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _more(sock: ezmq.Socket) -> list[list[bytes]]:
    """What else ``sock`` holds now, up to a batch, without waiting."""
    out: list[list[bytes]] = []
    # Asked first rather than read until Again: on the asyncio face that exception is
    # raised into a future, a reference cycle per batch for the garbage collector.
    while len(out) < READ_BATCH and sock.getsockopt(engine.EVENTS) & engine.POLLIN:
        try:
            out.append(await sock.recv_multipart(engine.DONTWAIT))
        except engine.Again:
            break
    return out


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
