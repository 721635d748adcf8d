"""The load tester's player: a blocking driver of the client core, on the engine's sync face.

Everything the protocol needs (action ids, retries, reply matching, following the player's
topics, gap repair) is :class:`client.protocol.ClientCore`, the same core the players' client
(:class:`client.session.GameSession`) drives; this module only moves frames and waits. It is
gevent-safe (Locust monkey-patches): waits go through the engine's sync ``Poller``, whose
user-side waits are cooperative, and there is no helper thread or event loop per player
(``SyncGameSession`` runs an asyncio loop in a thread per session, which does not scale to
thousands of greenlets).

Every wait also reads the SUB socket, so an event that arrives while a reply is outstanding is
timestamped when it arrives, not when the caller next looks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import engine as zmq
from client.protocol import (
    DEFAULT_TIMEOUT_S,
    MAX_ANSWER_BYTES,
    MAX_PUBLICATION_BYTES,
    Call,
    ClientCore,
    SessionError,
)
from client.shared_decoding import SharedDecoding
from gameserver.protocol import Event

__all__ = ["DEFAULT_TIMEOUT_S", "SessionError", "SyncGameClient"]

#: Messages taken from one socket before the core's outbox is carried out.
READ_BATCH = 256
#: One decoding of each publication for all the players of this process (the front sends a
#: room's event to every player in it, and a load generator's process runs hundreds of them).
PUBLICATIONS = SharedDecoding()


class SyncGameClient:
    """One player: a DEALER for requests and a SUB for the topics the core follows.

    A load test counts a timeout or a "server busy" as a failure, so by default each action
    gets one try and busy answers are not retried (``retries``, ``busy_budget``). A login is
    the exception: the front admits logins a few at a time and answers "busy, retry" past its
    queue (gameserver.logins), and a player's client backs off and retries, so the load
    tester's does too, within the login's timeout.
    """

    def __init__(
        self,
        actions: str,
        updates: str,
        context: Any,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        retries: int = 0,
        busy_budget: float = 0.0,
        updates_key: bytes | None = None,
    ) -> None:
        self.core = ClientCore(
            timeout=timeout, retries=retries, busy_budget=busy_budget, decode=PUBLICATIONS.decode
        )
        self.actions = actions
        self.context = context
        self.sub = context.socket(zmq.SUB)
        self.sub.linger = 0
        self.sub.setsockopt(zmq.MAXMSGSIZE, MAX_PUBLICATION_BYTES)
        if updates_key is not None:  # a relay's region: its own key (actions: the front's)
            self.sub.curve_serverkey = updates_key
            self.sub.curve_publickey, self.sub.curve_secretkey = zmq.curve_keypair()
        self.sub.connect(updates)
        self.dealer = self._open_dealer()
        self.poller = zmq.Poller()
        self.poller.register(self.sub, zmq.POLLIN)
        self.poller.register(self.dealer, zmq.POLLIN)
        #: Arrival times (perf_counter) of the ``say`` messages this client is waiting to hear.
        self.heard: dict[str, float] = {}
        self.listening: set[str] = set()
        self.events_seen = 0

    @property
    def token(self) -> str | None:
        return self.core.token

    @property
    def room(self) -> str | None:
        return self.core.room

    # -- requests -------------------------------------------------------------------------------

    def login(self, name: str, password: str, timeout: float | None = None) -> Call:
        """Log in (registers a new name); logins hash a password, so they may take longer.
        Returns the finished call (``reply``, ``size``, ``round_trip_ms``); raises SessionError."""
        now = time.monotonic()
        call = self.core.login(name, password, now, timeout=timeout)
        call.busy_until = now + (timeout if timeout is not None else self.core.timeout)
        return self._complete(call)

    def act(self, text: str) -> Call:
        """Run one command line; a game refusal is a Reply with ``ok`` False, not an error."""
        return self._complete(self.core.act(text, time.monotonic()))

    def hear(self, message: str, timeout: float) -> float | None:
        """When (perf_counter) this client's SUB received the ``say`` of ``message``."""
        self._wait(lambda: message in self.heard, time.monotonic() + timeout)
        self.listening.discard(message)
        return self.heard.pop(message, None)

    def _complete(self, call: Call) -> Call:
        self._flush(time.perf_counter())
        self._wait(lambda: call.done, None)
        call.result()  # raises RequestRefused or ServerUnavailable
        return call

    # -- moving frames --------------------------------------------------------------------------

    def _open_dealer(self) -> Any:
        dealer = self.context.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.setsockopt(zmq.MAXMSGSIZE, MAX_ANSWER_BYTES)
        dealer.connect(self.actions)
        return dealer

    def _wait(self, until: Callable[[], bool], deadline: float | None) -> None:
        """Read both sockets and keep the core's time until ``until()`` or the deadline."""
        while not until():
            now = time.monotonic()
            due = self.core.next_deadline()
            if deadline is not None:
                if now >= deadline:
                    return
                due = deadline if due is None else min(due, deadline)
            wait_ms = -1 if due is None else max(1, int((due - now) * 1000) + 1)
            ready = dict(self.poller.poll(wait_ms))
            arrived = time.perf_counter()
            now = time.monotonic()
            if self.sub in ready:
                for frames in _batch(self.sub):
                    self.core.receive_publication(frames, now)
            if self.dealer in ready:
                for frames in _batch(self.dealer):
                    self.core.receive_answer(frames, now)
            self.core.tick(now)
            self._flush(arrived)

    def _flush(self, arrived: float) -> None:
        out = self.core.take()
        if out.reset:  # Lazy Pirate: a fresh socket, then the calls on the wire again
            self.poller.unregister(self.dealer)
            self.dealer.close(linger=0)
            self.dealer = self._open_dealer()
            self.poller.register(self.dealer, zmq.POLLIN)
        for subscribe, topic in out.subscriptions:
            if subscribe:
                self.sub.subscribe(topic)
            else:
                self.sub.unsubscribe(topic)
        for frames in out.send:
            try:
                self.dealer.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                pass  # the queue to an absent front is full: the try's timeout covers it
        for event in out.events:
            self._heard(event, arrived)

    def _heard(self, event: Event, arrived: float) -> None:
        self.events_seen += 1
        message = event.data.get("message")
        if event.kind == "say" and isinstance(message, str) and message in self.listening:
            self.listening.discard(message)
            self.heard[message] = arrived

    def close(self) -> None:
        self.dealer.close(linger=0)
        self.sub.close(linger=0)


def _batch(sock: Any) -> list[list[bytes]]:
    """What ``sock`` holds now, up to a batch, without waiting."""
    out: list[list[bytes]] = []
    # Asked first rather than read until Again: an exception per batch, for every player of
    # a load generator's process, is CPU taken from the players it simulates.
    while len(out) < READ_BATCH and sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
        try:
            out.append(sock.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            break
    return out
