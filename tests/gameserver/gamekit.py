"""Test helpers for the game server: a fake clock, a real redis-server, and a small in-process
stand-in for the front that delivers published events to the players subscribed to them."""

from __future__ import annotations

import itertools
import os
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from gameserver.events import Outcome
from gameserver.passwords import PasswordPolicy
from gameserver.protocol import ActionRequest, Event, LoginReply, LoginRequest, Reply
from gameserver.service import GameService
from gameserver.store import Store, Tx
from gameserver.topics import session_topics
from loadtest.ports import unused_port

T = TypeVar("T")

REDIS_BINARY = shutil.which("redis-server") or "/usr/bin/redis-server"
#: Real Argon2id at the cheapest costs it accepts: tests log in many times.
FAST_PASSWORDS = PasswordPolicy(memory_kib=8, time_cost=1, parallelism=1)
START = 1_800_000_000.0  # a fixed "now" keeps every test reproducible


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    log_reader: threading.Thread
    #: Its Unix socket too, in a private directory of its own.
    socket_dir: str

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def unix_url(self, db: int = 0) -> str:
        return f"unix://{self.socket_dir}/redis.sock?db={db}"


def start_redis(deadline_seconds: float = 10.0) -> RedisServer:
    port = unused_port()
    socket_dir = tempfile.mkdtemp(prefix="crossroads-test-redis-")
    process = subprocess.Popen(
        [
            REDIS_BINARY,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            f"{socket_dir}/redis.sock",
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    # Wait for the readiness line rather than sleeping, then confirm with PING.
    deadline = time.monotonic() + deadline_seconds
    output = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"Ready to accept connections" not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or process.poll() is not None:
                process.kill()
                process.wait()
                process.stdout.close()
                shutil.rmtree(socket_dir, ignore_errors=True)
                raise RuntimeError(
                    f"redis-server did not start:\n{output.decode(errors='replace')}"
                )
            if selector.select(timeout=remaining):
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    continue
                output += chunk
    # Keep reading its log so a chatty server can never block on a full pipe.
    log_reader = threading.Thread(target=process.stdout.read, daemon=True)
    log_reader.start()
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        assert client.ping()
    finally:
        client.close()
    return RedisServer(port, process, log_reader, socket_dir)


# --- an in-process stand-in for the front: sessions, subscriptions, fan-out ---------------------


@dataclass
class Player:
    game: Game
    name: str
    token: str
    private_topic: str
    room: str
    inbox: list[Event] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def topics(self) -> list[str]:
        return session_topics(self.room, self.token)

    def act(self, text: str, action_id: str | None = None) -> Outcome:
        # Unique across logins too: the store remembers a player's action ids.
        action_id = action_id or f"{self.name}-{self._prefix}-{next(self._ids)}"
        return self.game.send(self, ActionRequest(token=self.token, action_id=action_id, text=text))

    def say_ok(self, text: str) -> str:
        """Run a command that must succeed; returns the reply text."""
        reply = self.act(text).reply
        assert isinstance(reply, Reply) and reply.ok, reply
        return reply.text

    def heard(self, kind: str | None = None) -> list[str]:
        return [event.text for event in self.inbox if kind is None or event.kind == kind]


class Game:
    def __init__(self, service: GameService) -> None:
        self.service = service
        self.players: list[Player] = []
        self.published: list[Event] = []

    def login(self, name: str, password: str = "correct horse") -> Player:
        outcome = self.service.handle(LoginRequest(name=name, password=password))
        reply = outcome.reply
        assert isinstance(reply, LoginReply), reply
        player = Player(self, reply.player, reply.token, reply.private_topic, reply.room)
        self.players.append(player)
        self._deliver(outcome)
        return player

    def send(self, player: Player, request: ActionRequest) -> Outcome:
        outcome = self.service.handle(request)
        if isinstance(outcome.reply, Reply) and outcome.reply.room:
            player.room = outcome.reply.room  # the front re-subscribes on a room change
        self._deliver(outcome)
        return outcome

    def _deliver(self, outcome: Outcome) -> None:
        self.deliver(outcome.events)

    def deliver(self, events: list[Event]) -> None:
        """Fan events out to the players subscribed to their topics, as PUB/SUB would."""
        for event in events:
            self.published.append(event)
            for player in self.players:
                if event.topic in player.topics:
                    player.inbox.append(event)


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A redis-server for a whole test session; skips without the binary; killed by PID after."""
    import pytest

    if not os.path.exists(REDIS_BINARY):
        pytest.skip(f"redis-server binary not found at {REDIS_BINARY}")
    server = None
    for _ in range(3):  # the free port may be taken between probing and binding
        try:
            server = start_redis()
            break
        except RuntimeError:
            continue
    if server is None:
        raise RuntimeError("could not start redis-server")
    try:
        yield server
    finally:
        server.process.kill()  # by PID: Popen.kill signals exactly that process
        server.process.wait(timeout=10)
        server.log_reader.join(timeout=10)  # ends at EOF, now that the server is gone
        if server.process.stdout is not None:
            server.process.stdout.close()
        shutil.rmtree(server.socket_dir, ignore_errors=True)


def empty_store_url(backend: str, tmp_path: object, server: RedisServer | None, db: int = 0) -> str:
    """A URL for an empty store: a fresh SQLite file, or a flushed Redis database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/game.db"
    assert server is not None
    client = redis.Redis.from_url(server.url(db))
    client.flushdb()
    client.close()
    return server.url(db)


# --- a store that counts what its transactions touch ------------------------------------------


@dataclass
class StoreCounts:
    """What went through a :class:`CountingStore` since the last :meth:`reset`."""

    read_transactions: int = 0  # Store.read
    write_transactions: int = 0  # Store.transaction
    documents_read: int = 0  # one per document, set member or counter value returned
    writes: int = 0  # puts, deletes, set changes, increments, logged events

    def reset(self) -> None:
        self.read_transactions = self.write_transactions = self.documents_read = self.writes = 0


class CountingTx(Tx):
    """Passes every call to the real transaction and counts it."""

    def __init__(self, inner: Tx, counts: StoreCounts) -> None:
        self.inner = inner
        self.counts = counts
        self.writable = inner.writable

    def get(self, ns: str, key: str) -> Any | None:
        self.counts.documents_read += 1
        return self.inner.get(ns, key)

    def put(self, ns: str, key: str, value: Any, ttl: float | None = None) -> None:
        self.counts.writes += 1
        self.inner.put(ns, key, value, ttl)

    def delete(self, ns: str, key: str) -> None:
        self.counts.writes += 1
        self.inner.delete(ns, key)

    def members(self, ns: str, key: str) -> set[str]:
        found = self.inner.members(ns, key)
        self.counts.documents_read += max(1, len(found))
        return found

    def first_members(self, ns: str, key: str, limit: int) -> list[str]:
        found = self.inner.first_members(ns, key, limit)
        self.counts.documents_read += max(1, len(found))
        return found

    def member_count(self, ns: str, key: str) -> int:
        self.counts.documents_read += 1
        return self.inner.member_count(ns, key)

    def members_after(self, ns: str, key: str, after: str, limit: int) -> list[str]:
        found = self.inner.members_after(ns, key, after, limit)
        self.counts.documents_read += max(1, len(found))
        return found

    def add_member(self, ns: str, key: str, member: str) -> None:
        self.counts.writes += 1
        self.inner.add_member(ns, key, member)

    def remove_member(self, ns: str, key: str, member: str) -> None:
        self.counts.writes += 1
        self.inner.remove_member(ns, key, member)

    def counter(self, ns: str, key: str) -> int:
        self.counts.documents_read += 1
        return self.inner.counter(ns, key)

    def glimpse_counter(self, ns: str, key: str) -> int:
        self.counts.documents_read += 1
        return self.inner.glimpse_counter(ns, key)

    def incr(self, ns: str, key: str) -> int:
        self.counts.writes += 1
        return self.inner.incr(ns, key)

    def log_event(self, topic: str, seq: int, payload: bytes) -> None:
        self.counts.writes += 1
        self.inner.log_event(topic, seq, payload)


class CountingStore(Store):
    """A real store underneath; every transaction's calls are counted in ``counts``."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner.url, inner.event_log_size)
        self.inner = inner
        self.counts = StoreCounts()

    def transaction(self, fn: Callable[[Tx], T]) -> T:
        self.counts.write_transactions += 1
        return self.inner.transaction(lambda tx: fn(CountingTx(tx, self.counts)))

    def read(self, fn: Callable[[Tx], T]) -> T:
        self.counts.read_transactions += 1
        return self.inner.read(lambda tx: fn(CountingTx(tx, self.counts)))

    def events_since(self, topic: str, since_seq: int) -> list[bytes]:
        return self.inner.events_since(topic, since_seq)

    def purge_expired(self) -> int:
        return self.inner.purge_expired()

    def close(self) -> None:
        self.inner.close()


class CountingConnection(redis.Connection):
    """A real Redis connection that counts the requests it sends (each is one round trip)."""

    sent = 0

    def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


#: Transfers between two balances that always add up to this, for checking what concurrent
#: transactions see: a pointer to one of two mirrors ("a", "b"), the one the last transfer
#: wrote its new "x" into, and a copy of the pointer written with it.
TRANSFER_TOTAL = 100
TRANSFER_SEED = {
    "x": TRANSFER_TOTAL,
    "y": 0,
    "pointer": "a",
    "pointer_copy": "a",
    "a": TRANSFER_TOTAL,
}


def transfer(amount: int, point_at: str, *, counted: bool = False) -> Callable[[Tx], None]:
    """Moves ``amount`` from "x" to "y"; ``counted`` also counts it and adds a member for it
    to a set it never reads (a counter and a set written blind)."""

    def run(tx: Tx) -> None:
        x, y = tx.get("doc", "x"), tx.get("doc", "y")
        tx.put("doc", "x", x - amount)
        tx.put("doc", "y", y + amount)
        tx.put("doc", point_at, x - amount)
        tx.put("doc", "pointer", point_at)
        tx.put("doc", "pointer_copy", point_at)
        if counted:
            tx.incr("count", "transfers")
            tx.add_member("set", "amounts", f"{tx.counter('count', 'transfers')}:{amount}")

    return run


def transfer_snapshot(tx: Tx, *, counted: bool = False) -> tuple[Any, ...]:
    """x, y, the pointer, what it points at, the pointer's copy (and, ``counted``, the count
    of transfers and the size of their set)."""
    pointer = tx.get("doc", "pointer")
    seen = (
        tx.get("doc", "x"),
        tx.get("doc", "y"),
        pointer,
        tx.get("doc", pointer),
        tx.get("doc", "pointer_copy"),
    )
    if counted:
        return (*seen, tx.counter("count", "transfers"), tx.member_count("set", "amounts"))
    return seen
