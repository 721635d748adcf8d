"""A small blocking game client for load generators, on the engine's sync face.

It is gevent-safe (Locust monkey-patches): waits go through the engine's sync ``Poller``, whose
user-side waits are cooperative, and there are no helper threads or event loops per client
(``SyncGameSession`` runs an asyncio loop in a thread, one per session, which does not scale to
thousands of greenlets). Requests use a DEALER with the REQ envelope ``[b"", body]``, so a late
reply after a timeout is simply discarded by its action id; updates come on a SUB socket.

Every wait also reads the SUB socket, so an event that arrives while a reply is outstanding is
timestamped when it arrives, not when the caller next looks.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

import engine as zmq
from gameserver.broadcast import topic_of, wire_topic
from gameserver.protocol import (
    ActionRequest,
    ErrorReply,
    LoginReply,
    LoginRequest,
    Message,
    ProtocolError,
    decode_event,
    decode_reply,
    encode,
)
from gameserver.topics import WORLD_TOPIC, room_topic

DEFAULT_TIMEOUT_S = 5.0


class GameError(Exception):
    """The server answered with an error reply (``code`` as in the protocol)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class Answer:
    """One request's outcome: the decoded reply, its size in bytes and round trip in ms."""

    reply: Any
    size: int
    ms: float


@dataclass
class SyncGameClient:
    """One player: a DEALER for requests and a SUB that follows world, room and private topics."""

    actions: str
    updates: str
    context: Any
    timeout: float = DEFAULT_TIMEOUT_S
    token: str | None = None
    room: str | None = None
    topics: set[str] = field(default_factory=set)
    #: Arrival times (perf_counter) of the ``say`` messages this client is waiting to hear.
    heard: dict[str, float] = field(default_factory=dict)
    listening: set[str] = field(default_factory=set)
    events_seen: int = 0

    def __post_init__(self) -> None:
        self.dealer = self.context.socket(zmq.DEALER)
        self.dealer.linger = 0
        self.dealer.connect(self.actions)
        self.sub = self.context.socket(zmq.SUB)
        self.sub.linger = 0
        self.sub.connect(self.updates)
        self.poller = zmq.Poller()
        self.poller.register(self.dealer, zmq.POLLIN)
        self.poller.register(self.sub, zmq.POLLIN)
        self._prefix = secrets.token_hex(5)
        self._ids = 0

    # -- requests -------------------------------------------------------------------------------

    def _request(
        self,
        message: Message,
        accept: Callable[[dict[str, Any]], bool],
        timeout: float | None = None,
    ) -> Answer:
        """Send and wait for the matching reply; raises TimeoutError or GameError."""
        timeout = self.timeout if timeout is None else timeout
        start = time.perf_counter()
        self.dealer.send_multipart([b"", encode(message)])
        deadline = start + timeout
        while True:
            frames = self._wait(deadline, want_reply=True)
            if frames is None:
                raise TimeoutError(f"no reply within {timeout:.1f}s")
            body = frames[1] if len(frames) > 1 and frames[0] == b"" else frames[0]
            try:
                raw = orjson.loads(body)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(raw, dict) or not (raw.get("type") == "error" or accept(raw)):
                continue  # a late reply to an earlier, timed-out request
            ms = (time.perf_counter() - start) * 1000
            reply = decode_reply(body)
            if isinstance(reply, ErrorReply):
                raise GameError(reply.code, reply.message)
            return Answer(reply, sum(len(f) for f in frames), ms)

    def _wait(
        self, deadline: float, *, want_reply: bool, until: Callable[[], bool] | None = None
    ) -> list[bytes] | None:
        """Read updates until a reply comes (``want_reply``), ``until()`` holds or the deadline
        passes. Without ``want_reply`` no request is outstanding: stale replies are dropped."""
        while True:
            if until is not None and until():
                return None
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            ready = dict(self.poller.poll(max(1, int(left * 1000))))
            if self.sub in ready:
                self.drain()
            if self.dealer in ready:
                frames = self.dealer.recv_multipart()
                if want_reply:
                    return frames

    def login(self, name: str, password: str, timeout: float | None = None) -> Answer:
        """Log in (registers a new name); logins hash a password, so they may take longer."""
        answer = self._request(
            LoginRequest(name=name, password=password),
            lambda o: o.get("type") == "login_ok",
            timeout,
        )
        reply: LoginReply = answer.reply
        self.token = reply.token
        self._follow(WORLD_TOPIC)
        self._follow(reply.private_topic)
        self.enter(reply.room)
        return answer

    def act(self, text: str) -> Answer:
        """Run one command line; a game refusal is a Reply with ``ok`` False, not an error."""
        if self.token is None:
            raise RuntimeError("not logged in")
        self._ids += 1
        action_id = f"{self._prefix}-{self._ids}"
        request = ActionRequest(token=self.token, action_id=action_id, text=text)
        answer = self._request(
            request, lambda o: o.get("type") == "reply" and o.get("action_id") == action_id
        )
        if answer.reply.room:
            self.enter(answer.reply.room)
        return answer

    # -- updates --------------------------------------------------------------------------------

    def _follow(self, topic: str) -> None:
        if topic not in self.topics:
            self.topics.add(topic)
            self.sub.subscribe(wire_topic(topic))

    def _unfollow(self, topic: str) -> None:
        if topic in self.topics:
            self.topics.discard(topic)
            self.sub.unsubscribe(wire_topic(topic))

    def expect_room(self, room: str) -> None:
        """Subscribe to a room about to be entered (before the move, so no event is missed)."""
        self._follow(room_topic(room))

    def enter(self, room: str) -> None:
        """Now in ``room``: follow it, leave the previous room's topic."""
        current = room_topic(room)
        for topic in [t for t in self.topics if t.startswith("room.") and t != current]:
            self._unfollow(topic)
        self.room = room
        self._follow(current)

    def drain(self) -> int:
        """Read every update waiting on the SUB socket (never blocks); returns how many."""
        count = 0
        while True:
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return count
            now = time.perf_counter()
            count += 1
            self.events_seen += 1
            if len(frames) != 2 or not self.listening:
                continue
            topic = topic_of(frames[0])
            if topic is None or not topic.startswith("room."):
                continue
            try:
                event = decode_event(frames[1])
            except ProtocolError:
                continue
            message = event.data.get("message")
            if event.kind == "say" and isinstance(message, str) and message in self.listening:
                self.listening.discard(message)
                self.heard[message] = now

    def hear(self, message: str, timeout: float) -> float | None:
        """When (perf_counter) this client's SUB received the ``say`` of ``message``."""
        deadline = time.perf_counter() + timeout
        self._wait(deadline, want_reply=False, until=lambda: message in self.heard)
        self.listening.discard(message)
        return self.heard.pop(message, None)

    def close(self) -> None:
        self.dealer.close(linger=0)
        self.sub.close(linger=0)
