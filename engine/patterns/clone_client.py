"""Clone clients (RFC 12, CHP): a local replica of the server's map, kept in sync.

`CloneReplica` is the sans-I/O client: it builds the snapshot request, folds in the snapshot and
the update stream, and notices sequence gaps (an update or HUGZ beyond the next expected number,
as when a high-water mark drops messages); a gap means "resync": fetch a fresh snapshot. Until
that snapshot is complete the old map stays readable, and updates that arrive meanwhile are
buffered and replayed after it. `CloneClient` (sync) and `AsyncCloneClient` (asyncio) only move
frames between sockets and a replica.

Gap detection needs every sequence number, so by default a client subscribes to all updates and
filters its subtree locally; `detect_gaps=False` subscribes to the subtree alone (less traffic,
but lost updates then go unnoticed). A client's own `set()` shows up in its map once the server
has numbered and republished it, so every client sees every change in the same order.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from typing import Any

import engine as zmq
import engine.asyncio as azmq

from .clone import (
    HUGZ,
    KTHXBAI,
    TTL_PROPERTY,
    KVMsg,
    MalformedMessage,
    in_subtree,
    snapshot_request,
)

#: Give up on a snapshot after this long and ask again on a fresh socket (server gone or
#: restarted); generous, since a big map under load takes a while to stream.
SNAPSHOT_TIMEOUT_S = 5.0
#: Messages taken from the update stream per pass, so a flood cannot starve the snapshot socket.
MAX_BATCH = 500
#: How long close() lets queued set()s drain to the server.
UPDATES_LINGER_MS = 1000

_HUGZ_KEY = HUGZ.decode()
_KTHXBAI_KEY = KTHXBAI.decode()

#: Called with each applied change; a deletion has an empty body.
ChangeCallback = Callable[[KVMsg], None]


class CloneReplica:
    """A client's copy of the map and where it stands in the update stream. No I/O."""

    def __init__(self, subtree: str = "", detect_gaps: bool = True) -> None:
        self.subtree = subtree
        self.detect_gaps = detect_gaps
        self.entries: dict[str, KVMsg] = {}
        #: The last sequence number applied (or skipped as outside the subtree).
        self.sequence = 0
        #: A snapshot has been applied at least once.
        self.synced = False
        #: A snapshot request is outstanding.
        self.syncing = False
        #: A gap was seen: the face should call begin_sync() and send what it returns.
        self.needs_resync = False
        #: Gaps seen so far (each one costs a fresh snapshot).
        self.resyncs = 0
        self._incoming: dict[str, KVMsg] = {}
        self._pending: list[KVMsg] = []

    def begin_sync(self) -> list[bytes]:
        """Start (or restart) a snapshot; returns the ICANHAZ? request to send."""
        self.syncing = True
        self.needs_resync = False
        self._incoming = {}
        self._pending = []
        return snapshot_request(self.subtree)

    def on_snapshot(self, frames: list[bytes]) -> list[KVMsg] | None:
        """One KVSYNC or KTHXBAI. None while the snapshot streams in; at KTHXBAI, the changes
        it made to the map (the whole map the first time)."""
        if not self.syncing:
            return None  # the tail of an abandoned snapshot
        try:
            msg = KVMsg.decode(frames)
        except MalformedMessage:
            return None
        if msg.key == _KTHXBAI_KEY:
            return self._finish_sync(msg.sequence)
        if msg.body and in_subtree(msg.key, self.subtree):
            self._incoming[msg.key] = msg
        return None

    def _finish_sync(self, sequence: int) -> list[KVMsg]:
        old, new = self.entries, self._incoming
        changes = [m for k, m in new.items() if not _same(old.get(k), m)]
        changes += [KVMsg(k, sequence) for k in old if k not in new]
        self.entries, self._incoming = new, {}
        self.sequence = sequence
        self.syncing = False
        self.synced = True
        pending, self._pending = self._pending, []
        for msg in pending:  # updates that raced the snapshot; older ones are skipped
            changes += self._apply(msg)
            if self.needs_resync:
                break
        return changes

    def on_update(self, frames: list[bytes]) -> list[KVMsg]:
        """One message from the publisher stream; the changes it made (usually 0 or 1)."""
        try:
            msg = KVMsg.decode(frames)
        except MalformedMessage:
            return []
        if self.syncing:
            self._pending.append(msg)
            return []
        if not self.synced or self.needs_resync:
            return []  # nothing to apply it to yet; the coming snapshot will include it
        return self._apply(msg)

    def _apply(self, msg: KVMsg) -> list[KVMsg]:
        if msg.key == _HUGZ_KEY:
            # HUGZ carries the server's sequence: beyond ours means we lost the tail of a burst.
            if self.detect_gaps and msg.sequence > self.sequence:
                self._gap()
            return []
        if msg.sequence <= self.sequence:
            return []  # RFC 12: already covered by the snapshot or an earlier update
        if self.detect_gaps and msg.sequence != self.sequence + 1:
            self._gap()
            return []
        self.sequence = msg.sequence
        if not in_subtree(msg.key, self.subtree):
            return []
        if msg.body:
            self.entries[msg.key] = msg
        elif self.entries.pop(msg.key, None) is None:
            return []  # deleting what we never had changes nothing
        return [msg]

    def _gap(self) -> None:
        self.needs_resync = True
        self.resyncs += 1

    def topics(self) -> list[bytes]:
        """What the SUB socket should subscribe to."""
        if self.detect_gaps or not self.subtree:
            return [b""]
        return [self.subtree.encode(), HUGZ]

    def get(self, key: str) -> bytes | None:
        msg = self.entries.get(key)
        return None if msg is None else msg.body

    def to_dict(self) -> dict[str, bytes]:
        return {key: msg.body for key, msg in self.entries.items()}


def _same(a: KVMsg | None, b: KVMsg) -> bool:
    return a is not None and a.body == b.body and a.properties == b.properties


def kvset(
    key: str, body: bytes, ttl: float | None = None, properties: Mapping[str, str] | None = None
) -> list[bytes]:
    """A KVSET command, with a fresh UUID as RFC 12 recommends."""
    props = dict(properties or {})
    if ttl is not None:
        props[TTL_PROPERTY] = format(ttl, "g")
    return KVMsg(key, 0, uuidlib.uuid4().bytes, props, body).encode()


class _CloneFace:
    """What the sync and asyncio clients share: sockets set-up, the replica, map reads, and the
    decisions of their drain loops; the faces only receive, send and wait."""

    def __init__(
        self,
        ctx: Any,
        snapshot: str,
        subscriber: str,
        collector: str | None,
        subtree: str,
        detect_gaps: bool,
        rcvhwm: int | None,
        snapshot_timeout: float,
        updates_type: int,
        on_change: ChangeCallback | None,
    ) -> None:
        self.replica = CloneReplica(subtree, detect_gaps)
        self.snapshot_timeout = snapshot_timeout
        self.on_change = on_change
        #: Monotonic time of the last message from the server (HUGZ included); 0: none yet.
        self.last_heard = 0.0
        self._snapshot_deadline = 0.0
        self._ctx = ctx
        self._snapshot_ep = snapshot
        self.subscriber = ctx.socket(zmq.SUB, linger=0)
        if rcvhwm is not None:
            self.subscriber.rcvhwm = rcvhwm  # before connect: it sizes the new pipe
        for topic in self.replica.topics():
            self.subscriber.subscribe(topic)
        self.subscriber.connect(subscriber)
        self.updates: Any = None
        if collector is not None:
            # Some linger, so sets made just before close() still reach the server.
            self.updates = ctx.socket(updates_type, linger=UPDATES_LINGER_MS)
            self.updates.connect(collector)
        self._dealer: Any = None

    @property
    def sequence(self) -> int:
        return self.replica.sequence

    @property
    def resyncs(self) -> int:
        return self.replica.resyncs

    @property
    def synced(self) -> bool:
        return self.replica.synced

    def get(self, key: str) -> bytes | None:
        return self.replica.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.replica.entries

    def __len__(self) -> int:
        return len(self.replica.entries)

    def to_dict(self) -> dict[str, bytes]:
        return self.replica.to_dict()

    # -- decisions shared by both drain loops ----------------------------------------------------

    def _emit(self, changes: list[KVMsg]) -> int:
        if self.on_change is not None:
            for msg in changes:
                self.on_change(msg)
        return len(changes)

    def _reading_snapshot(self) -> bool:
        return self._dealer is not None and self.replica.syncing

    def _took_snapshot_part(self, frames: list[bytes]) -> tuple[int, bool]:
        """(changes, snapshot complete)."""
        done = self.replica.on_snapshot(frames)
        if done is None:
            return 0, False
        self.last_heard = time.monotonic()
        return self._emit(done), True

    def _took_update(self, frames: list[bytes]) -> tuple[int, bool]:
        """(changes, stop reading: a resync is due)."""
        self.last_heard = time.monotonic()
        changes = self._emit(self.replica.on_update(frames))
        return changes, self.replica.needs_resync

    def _snapshot_due(self) -> tuple[bool, bool]:
        """(send a snapshot request now, on a fresh socket)."""
        if self.replica.needs_resync:
            return True, False
        late = self.replica.syncing and time.monotonic() >= self._snapshot_deadline
        return late, late

    def _prepare_request(self, fresh_socket: bool) -> list[bytes]:
        if fresh_socket and self._dealer is not None:
            self._dealer.close(linger=0)  # whatever it still holds belongs to the old request
            self._dealer = None
        if self._dealer is None:
            self._dealer = self._ctx.socket(zmq.DEALER, linger=0)
            self._dealer.connect(self._snapshot_ep)
        self._snapshot_deadline = time.monotonic() + self.snapshot_timeout
        return self.replica.begin_sync()

    def _wait_ms(self, deadline: float) -> int:
        until = deadline
        if self.replica.syncing:
            until = min(until, self._snapshot_deadline)
        return max(0, int((until - time.monotonic()) * 1000) + 1)

    def _still_syncing(self, deadline: float) -> bool:
        if not (self.replica.syncing or self.replica.needs_resync):
            return False
        if time.monotonic() >= deadline:
            raise TimeoutError("no Clone snapshot from the server")
        return True

    def _kvset(self, key: str, body: bytes, ttl: float | None, props: dict[str, str]) -> list:
        if self.updates is None:
            raise RuntimeError("this client has no collector endpoint")
        return kvset(key, body, ttl, props)

    def close(self) -> None:
        for sock in (self.subscriber, self.updates, self._dealer):
            if sock is not None:
                sock.close()


class CloneClient(_CloneFace):
    """Sync CHP client: `sync()` once, then `poll()` to apply updates; `set()` to change the map.

    `collector` may be None for a read-only client. `updates_type` is PUSH for the default PULL
    collector, PUB for an RFC-literal SUB collector. `on_change(msg)` hears every change,
    including those a resync makes.
    """

    def __init__(
        self,
        snapshot: str,
        subscriber: str,
        collector: str | None = None,
        *,
        subtree: str = "",
        detect_gaps: bool = True,
        rcvhwm: int | None = None,
        snapshot_timeout: float = SNAPSHOT_TIMEOUT_S,
        updates_type: int = zmq.PUSH,
        on_change: ChangeCallback | None = None,
        context: zmq.Context | None = None,
    ) -> None:
        super().__init__(
            context or zmq.Context.instance(),
            snapshot,
            subscriber,
            collector,
            subtree,
            detect_gaps,
            rcvhwm,
            snapshot_timeout,
            updates_type,
            on_change,
        )

    def sync(self, timeout: float = SNAPSHOT_TIMEOUT_S) -> None:
        """Fetch the first snapshot; TimeoutError if it does not complete in `timeout` s."""
        if not self.replica.syncing:
            self._dealer_send(self._prepare_request(False))
        deadline = time.monotonic() + timeout
        while self._still_syncing(deadline):
            self.poll(min(0.1, max(0.0, deadline - time.monotonic())))

    def poll(self, timeout: float = 0.0) -> int:
        """Apply what has arrived, waiting up to `timeout` s for something; the change count."""
        deadline = time.monotonic() + timeout
        changes = 0
        while True:
            changes += self._drain()
            if changes or time.monotonic() >= deadline:
                return changes
            poller = zmq.Poller()
            poller.register(self.subscriber, zmq.POLLIN)
            if self._reading_snapshot():
                poller.register(self._dealer, zmq.POLLIN)
            poller.poll(self._wait_ms(deadline))

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Poll until `predicate()` holds; False if `timeout` s pass first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.poll(min(remaining, 0.1))
        return True

    def _drain(self) -> int:
        changes = 0
        if self._reading_snapshot():
            for _ in range(MAX_BATCH):
                try:
                    frames = self._dealer.recv_multipart(zmq.DONTWAIT)
                except zmq.Again:
                    break
                n, done = self._took_snapshot_part(frames)
                changes += n
                if done:
                    break
        for _ in range(MAX_BATCH):
            try:
                frames = self.subscriber.recv_multipart(zmq.DONTWAIT)
            except zmq.Again:
                break
            n, stop = self._took_update(frames)
            changes += n
            if stop:
                break
        due, fresh = self._snapshot_due()
        if due:
            self._dealer_send(self._prepare_request(fresh))
        return changes

    def _dealer_send(self, frames: list[bytes]) -> None:
        self._dealer.send_multipart(frames)

    def set(self, key: str, body: bytes, *, ttl: float | None = None, **properties: str) -> None:
        """Ask the server to set `key` (an empty body deletes it); applied when republished."""
        self.updates.send_multipart(self._kvset(key, body, ttl, properties))

    def delete(self, key: str) -> None:
        self.set(key, b"")


class AsyncCloneClient(_CloneFace):
    """CloneClient on asyncio: `await client.sync()`, then `await client.poll()`, or run the
    `run()` coroutine as a task to keep the replica current in the background."""

    def __init__(
        self,
        snapshot: str,
        subscriber: str,
        collector: str | None = None,
        *,
        subtree: str = "",
        detect_gaps: bool = True,
        rcvhwm: int | None = None,
        snapshot_timeout: float = SNAPSHOT_TIMEOUT_S,
        updates_type: int = zmq.PUSH,
        on_change: ChangeCallback | None = None,
        context: azmq.Context | None = None,
    ) -> None:
        super().__init__(
            context or azmq.Context.instance(),
            snapshot,
            subscriber,
            collector,
            subtree,
            detect_gaps,
            rcvhwm,
            snapshot_timeout,
            updates_type,
            on_change,
        )

    async def sync(self, timeout: float = SNAPSHOT_TIMEOUT_S) -> None:
        if not self.replica.syncing:
            await self._dealer_send(self._prepare_request(False))
        deadline = time.monotonic() + timeout
        while self._still_syncing(deadline):
            await self.poll(min(0.1, max(0.0, deadline - time.monotonic())))

    async def poll(self, timeout: float = 0.0) -> int:
        deadline = time.monotonic() + timeout
        changes = 0
        while True:
            changes += await self._drain()
            if changes or time.monotonic() >= deadline:
                return changes
            poller = azmq.Poller()
            poller.register(self.subscriber, zmq.POLLIN)
            if self._reading_snapshot():
                poller.register(self._dealer, zmq.POLLIN)
            await poller.poll(self._wait_ms(deadline))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await self.poll(min(remaining, 0.1))
        return True

    async def run(self) -> None:
        """Keep the replica current until cancelled."""
        if not self.replica.synced:
            await self.sync()
        while True:
            await self.poll(1.0)

    async def _drain(self) -> int:
        changes = 0
        if self._reading_snapshot():
            for _ in range(MAX_BATCH):
                try:
                    frames = await self._dealer.recv_multipart(zmq.DONTWAIT)
                except zmq.Again:
                    break
                n, done = self._took_snapshot_part(frames)
                changes += n
                if done:
                    break
        for _ in range(MAX_BATCH):
            try:
                frames = await self.subscriber.recv_multipart(zmq.DONTWAIT)
            except zmq.Again:
                break
            n, stop = self._took_update(frames)
            changes += n
            if stop:
                break
        due, fresh = self._snapshot_due()
        if due:
            await self._dealer_send(self._prepare_request(fresh))
        return changes

    async def _dealer_send(self, frames: list[bytes]) -> None:
        await self._dealer.send_multipart(frames)

    async def set(
        self, key: str, body: bytes, *, ttl: float | None = None, **properties: str
    ) -> None:
        await self.updates.send_multipart(self._kvset(key, body, ttl, properties))

    async def delete(self, key: str) -> None:
        await self.set(key, b"")
