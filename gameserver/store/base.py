"""The storage contract every backend implements: atomic transactions over a few primitives.

Backends only provide documents, sets, counters and a bounded per-topic event log; the game's
typed view of them lives once in :mod:`gameserver.store.state`, so both backends share one
meaning. ``Store.transaction(fn)`` may call ``fn`` several times (an optimistic backend retries
on conflict), so ``fn`` must have no effects outside the :class:`Tx` it is given.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import TracebackType
from typing import Any, Self, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)

#: Events each topic's log keeps for catch-up. A subscriber repairs what PUB/SUB did not bring
#: (a reconnect, a relay's restart, two workers' events out of order) from here, so the log
#: must outlast the delay before a repair in the busiest room: about 100 events/s in the
#: crossroads of a 1,000-player load test, whose simulated players read their updates only
#: when they act, 1-3 s apart. 200 covered 2 s and lost events there ("N event(s) of
#: room.crossroads are gone from the log", 9-24 per run); 1,000 covers about 10 s. A full
#: log's catch-up is a few hundred kB, spliced from stored bytes.
DEFAULT_EVENT_LOG_SIZE = 1000


class StoreError(RuntimeError):
    """The store failed (bad URL, lost connection...)."""


class StoreBusy(StoreError):
    """A transaction could not get through contention in time; the caller may retry later."""


class WriteInRead(Exception):
    """A read-only transaction (:meth:`Store.read`) tried to write: run it as a transaction."""


class Tx(ABC):
    """One atomic unit of work. Reads see this transaction's own writes; every write becomes
    visible together at commit or never. Values are JSON-compatible objects. ``writable`` is
    False inside :meth:`Store.read`, where writes raise :class:`WriteInRead`."""

    writable = True

    @abstractmethod
    def get(self, ns: str, key: str) -> Any | None:
        """The document stored under ``(ns, key)``, or None."""

    @abstractmethod
    def put(self, ns: str, key: str, value: Any, ttl: float | None = None) -> None:
        """Store a document; with ``ttl`` (seconds) the store may forget it after that long."""

    def get_record(self, ns: str, key: str, model: type[R]) -> R | None:
        """The document as a validated ``model``. Backends hand back the record they
        validated or wrote before while the document is unchanged, instead of decoding and
        validating it again (:class:`RecordCache`)."""
        raw = self.get(ns, key)
        return None if raw is None else model.model_validate(raw)

    def put_record(self, ns: str, key: str, record: BaseModel, ttl: float | None = None) -> None:
        """Store a record as its document."""
        self.put(ns, key, record.model_dump(), ttl)

    @abstractmethod
    def delete(self, ns: str, key: str) -> None:
        """Forget a document (no error if absent)."""

    @abstractmethod
    def members(self, ns: str, key: str) -> set[str]:
        """A copy of the set stored under ``(ns, key)`` (empty if none)."""

    @abstractmethod
    def first_members(self, ns: str, key: str, limit: int) -> list[str]:
        """The ``limit`` smallest members of the set (in code-point order): a bounded peek at
        a set that may be large (everyone present in a crowded room)."""

    @abstractmethod
    def member_count(self, ns: str, key: str) -> int:
        """How many members the set has, without reading them."""

    def glimpse_members(self, ns: str, key: str, limit: int) -> tuple[list[str], int]:
        """The ``limit`` smallest members and the size of a set, for display only (what a
        description names, whether a room is told who comes and goes): nothing the
        transaction's writes depend on may rest on them. Exact here; an optimistic backend may
        answer from what it saw a moment ago without making the transaction depend on the set
        (see the Redis backend's GLIMPSE_STALE_S)."""
        first = self.first_members(ns, key, limit) if limit > 0 else []
        return first, self.member_count(ns, key)

    def members_after(self, ns: str, key: str, after: str, limit: int) -> list[str]:
        """The ``limit`` smallest members greater than ``after``: walks a large set a slice at
        a time. (This fallback reads the whole set; backends with an ordered index override
        it.)"""
        return sorted(member for member in self.members(ns, key) if member > after)[:limit]

    @abstractmethod
    def add_member(self, ns: str, key: str, member: str) -> None: ...

    @abstractmethod
    def remove_member(self, ns: str, key: str, member: str) -> None: ...

    @abstractmethod
    def counter(self, ns: str, key: str) -> int:
        """Current value of a counter (0 if never incremented)."""

    def glimpse_counter(self, ns: str, key: str) -> int:
        """A counter's value for positioning only (where a topic's log stood when a player
        came in): nothing the transaction's writes depend on may rest on it. Exact here; an
        optimistic backend may answer from what it saw a moment ago, never from ahead of the
        store, without making the transaction depend on the counter."""
        return self.counter(ns, key)

    @abstractmethod
    def incr(self, ns: str, key: str) -> int:
        """Increment a counter and return its new value."""

    def reserve(self, ns: str, key: str) -> int:
        """Increment a counter whose new value this transaction only writes, never decides
        on: an event's seq. A store that commits a batch in one call (Redis) may give it
        only then, so that two workers numbering events on one topic do not refuse each
        other's batches; until then the value is a *placeholder* (see
        :func:`settle_placeholders`), which the store replaces wherever it stands as
        ``"seq":<placeholder>`` in the JSON the transaction writes, and which the batch's
        ``assigned`` maps to the value given. A later :meth:`counter` read in the same
        transaction does not see the reservation. By default, :meth:`incr`."""
        return self.incr(ns, key)

    @abstractmethod
    def log_event(self, topic: str, seq: int, payload: bytes) -> None:
        """Append to the topic's recent-events log, which keeps only the newest entries."""


#: Placeholders (Tx.reserve) are the negatives of seven-digit numbers: never a real counter
#: value (those are positive), and all of one width, so none is the start of another.
FIRST_PLACEHOLDER = 1_000_000
LAST_PLACEHOLDER = 9_999_999
_SEQ_PLACEHOLDER = re.compile(rb'"seq":-(\d+)')
_MEMBER_PLACEHOLDER = re.compile(rb'":-(\d+)')


def settle_placeholders(raw: bytes, assigned: dict[int, int], *, any_member: bool = False) -> bytes:
    r"""``raw`` (JSON) with each reserved placeholder replaced by the value it was given, where
    it stands as ``"seq":<placeholder>``; with ``any_member``, as any member's value (only
    for JSON that carries no text from players: a player's text ``x":-1000001`` is encoded
    ``x\":-1000001``, which holds ``":-1000001``, but ``"seq":`` cannot come from a string,
    whose quotes are all escaped)."""
    if not assigned:
        return raw
    pattern = _MEMBER_PLACEHOLDER if any_member else _SEQ_PLACEHOLDER

    def value(match: re.Match[bytes]) -> bytes:
        seq = assigned.get(-int(match[1]))
        if seq is None:
            return match[0]
        return match[0][: match.start(1) - match.start(0) - 1] + str(seq).encode()

    return pattern.sub(value, raw)


def record_json(record: BaseModel) -> bytes:
    """A record as JSON bytes, serialized by pydantic's core straight to bytes (about half
    the cost of ``orjson.dumps(record.model_dump())``, which builds a dict first)."""
    return record.__pydantic_serializer__.to_json(record)


class Batch:
    """A batch's caller names the part of its work each transaction belongs to (a worker's
    job); at the batch's end, ``redo`` lists the parts whose transactions the store refused
    when it committed. Their results were computed on data that had changed meanwhile: the
    caller discards them and runs those parts again. A part's transactions after a refused
    one are refused with it; those before it stand, so a part must be safe to run again
    after them (an action is: its record is written with its effects). A store that commits
    as it goes (SQLite, whose batch holds the write lock) never refuses a part."""

    def __init__(self) -> None:
        self.part: Hashable | None = None
        self.redo: list[Hashable] = []
        #: Placeholder -> value, for each counter reserved (Tx.reserve) by a part that
        #: stands, once the batch has committed; empty in a store that assigns at once.
        self.assigned: dict[int, int] = {}
        #: The backend's own note, for a batch opened with ``redo=`` this one: for each
        #: refused part that only read, each key it read at the version that its refusal's
        #: answer left in the worker's copy (RedisStore).
        self.settled_reads: dict[Hashable, dict[str, int]] = {}

    @contextmanager
    def running(self, part: Hashable) -> Iterator[None]:
        """The transactions run inside belong to ``part``."""
        outer, self.part = self.part, part
        try:
            yield
        finally:
            self.part = outer

    def refused(self, part: Hashable) -> None:
        if part not in self.redo:
            self.redo.append(part)


class LogRead:
    """A topic's logged events after a seq (:meth:`Store.read_log`): read at once, or, in a
    batch of a store that commits it in one call (Redis), read in that call's round trip,
    after its commit, and in only once the batch has ended."""

    def __init__(self, topic: str, since_seq: int) -> None:
        self.topic = topic
        self.since_seq = since_seq
        self._payloads: list[bytes] | None = None

    @property
    def ready(self) -> bool:
        return self._payloads is not None

    def deliver(self, payloads: list[bytes]) -> None:
        self._payloads = payloads

    @property
    def payloads(self) -> list[bytes]:
        if self._payloads is None:
            raise RuntimeError(f"the log of {self.topic} is read when its batch ends")
        return self._payloads


class RecordCache:
    """Validated records by document and a stamp of its content (the stored bytes, or a
    version): a record is validated once when it comes from the network or the disk, and
    a document the worker wrote itself is never validated again while it stays unchanged."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._entries: dict[Any, tuple[Any, BaseModel]] = {}

    def get(self, where: Any, stamp: Any, model: type[R]) -> R | None:
        entry = self._entries.get(where)
        if entry is None or entry[0] != stamp or type(entry[1]) is not model:
            return None
        return entry[1]  # type: ignore[return-value]

    def put(self, where: Any, stamp: Any, record: BaseModel) -> None:
        if len(self._entries) >= self.limit:
            self._entries.clear()  # crude but O(1) per call; the working set refills it
        self._entries[where] = (stamp, record)

    def forget(self, where: Any) -> None:
        self._entries.pop(where, None)


class ReadOnlyTx(Tx):
    """Reads pass through to ``inner``; writes raise :class:`WriteInRead`."""

    writable = False

    def __init__(self, inner: Tx) -> None:
        self.inner = inner

    def get(self, ns: str, key: str) -> Any | None:
        return self.inner.get(ns, key)

    def get_record(self, ns: str, key: str, model: type[R]) -> R | None:
        return self.inner.get_record(ns, key, model)

    def members(self, ns: str, key: str) -> set[str]:
        return self.inner.members(ns, key)

    def first_members(self, ns: str, key: str, limit: int) -> list[str]:
        return self.inner.first_members(ns, key, limit)

    def member_count(self, ns: str, key: str) -> int:
        return self.inner.member_count(ns, key)

    def glimpse_members(self, ns: str, key: str, limit: int) -> tuple[list[str], int]:
        return self.inner.glimpse_members(ns, key, limit)

    def members_after(self, ns: str, key: str, after: str, limit: int) -> list[str]:
        return self.inner.members_after(ns, key, after, limit)

    def counter(self, ns: str, key: str) -> int:
        return self.inner.counter(ns, key)

    def glimpse_counter(self, ns: str, key: str) -> int:
        return self.inner.glimpse_counter(ns, key)

    def put(self, ns: str, key: str, value: Any, ttl: float | None = None) -> None:
        raise WriteInRead(f"put {ns}:{key}")

    def put_record(self, ns: str, key: str, record: BaseModel, ttl: float | None = None) -> None:
        raise WriteInRead(f"put {ns}:{key}")

    def delete(self, ns: str, key: str) -> None:
        raise WriteInRead(f"delete {ns}:{key}")

    def add_member(self, ns: str, key: str, member: str) -> None:
        raise WriteInRead(f"add to {ns}:{key}")

    def remove_member(self, ns: str, key: str, member: str) -> None:
        raise WriteInRead(f"remove from {ns}:{key}")

    def incr(self, ns: str, key: str) -> int:
        raise WriteInRead(f"incr {ns}:{key}")

    def log_event(self, topic: str, seq: int, payload: bytes) -> None:
        raise WriteInRead(f"log on {topic}")


class Store(ABC):
    """A shared, durable game state that several worker processes can use at once."""

    def __init__(self, url: str, event_log_size: int = DEFAULT_EVENT_LOG_SIZE) -> None:
        if event_log_size < 1:
            raise ValueError("event_log_size must be positive")
        self.url = url
        self.event_log_size = event_log_size

    @abstractmethod
    def transaction(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` atomically and return its result; an exception from ``fn`` discards all
        its writes and propagates. Raises :class:`StoreBusy` if contention never clears."""

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` on a consistent snapshot without taking the write lock or syncing
        anything; any write raises :class:`WriteInRead` (the caller then uses
        :meth:`transaction`). For actions that change nothing, such as ``look``.

        This fallback runs a full transaction that refuses writes; backends override it with
        something cheaper."""
        return self.transaction(lambda tx: fn(ReadOnlyTx(tx)))

    def batch(self, redo: Batch | None = None) -> AbstractContextManager[Batch]:
        """Group the transactions run inside the ``with`` block into one commit (one sync, or
        one round trip) where the backend can: each still succeeds or fails on its own, but
        none is durable, nor may its result be shown to anyone, before the block ends without
        raising :class:`StoreError`, and then only if its part is not in the batch's
        ``redo`` (:class:`Batch`). ``redo``: the batch just ended, whose refused parts this
        one runs again, at once and under the same names. This fallback commits each
        transaction by itself."""
        return nullcontext(Batch())

    @abstractmethod
    def events_since(self, topic: str, since_seq: int) -> list[bytes]:
        """Logged event payloads of ``topic`` with seq > ``since_seq``, oldest first."""

    def read_log(self, topic: str, since_seq: int) -> LogRead:
        """:meth:`events_since` for a part of a batch: a store that commits a batch in one
        call may read the log in that call's round trip (the read comes in with the batch's
        end, :attr:`LogRead.ready`). This fallback, and any read outside a batch's part, reads
        at once."""
        log = LogRead(topic, since_seq)
        log.deliver(self.events_since(topic, since_seq))
        return log

    @abstractmethod
    def purge_expired(self) -> int:
        """Delete documents whose ttl ran out (backends with native expiry return 0)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
