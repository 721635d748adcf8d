"""Embedded SQLite backend, safe for several worker processes sharing one database file.

WAL lets readers proceed while one writer commits; every transaction starts with
``BEGIN IMMEDIATE`` so it takes the write lock up front (two deferred transactions that both
read then write would otherwise deadlock into SQLITE_BUSY). Writers queue for that lock on a
``flock`` beside the database, which wakes the next one as soon as it is free, and
``busy_timeout`` bounds the wait; checkpoints run on a thread of their own
(:mod:`.sqlite_writers`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from .base import (
    DEFAULT_EVENT_LOG_SIZE,
    Batch,
    R,
    ReadOnlyTx,
    RecordCache,
    Store,
    StoreBusy,
    StoreError,
    Tx,
    record_json,
)
from .sqlite_writers import Checkpointer, WriterBusy, WriterQueue

T = TypeVar("T")
log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, expires_at REAL,
    PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS docs_expiry ON docs (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS members (
    ns TEXT NOT NULL, key TEXT NOT NULL, member TEXT NOT NULL,
    PRIMARY KEY (ns, key, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS member_counts (
    ns TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (
    ns TEXT NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    topic TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
    PRIMARY KEY (topic, seq)) WITHOUT ROWID;
"""


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection, event_log_size: int, records: RecordCache) -> None:
        self._conn = conn
        self._event_log_size = event_log_size
        self._records = records
        # Documents this transaction has read or written: an action reads its player again
        # after a move, say, and the database would answer what it answered a moment ago.
        self._seen: dict[tuple[str, str], bytes | None] = {}

    def _blob(self, ns: str, key: str) -> bytes | None:
        where = (ns, key)
        if where in self._seen:
            return self._seen[where]
        row = self._conn.execute(
            "SELECT value, expires_at FROM docs WHERE ns = ? AND key = ?", where
        ).fetchone()
        blob = None
        if row is not None and (row[1] is None or row[1] > time.time()):
            blob = bytes(row[0])
        self._seen[where] = blob
        return blob

    def get(self, ns: str, key: str) -> Any | None:
        blob = self._blob(ns, key)
        return None if blob is None else orjson.loads(blob)

    def get_record(self, ns: str, key: str, model: type[R]) -> R | None:
        # Keyed by the stored bytes: unchanged bytes are the record validated before.
        blob = self._blob(ns, key)
        if blob is None:
            return None
        record = self._records.get((ns, key), blob, model)
        if record is None:
            record = model.model_validate_json(blob)
            self._records.put((ns, key), blob, record)
        return record

    def put(self, ns: str, key: str, value: Any, ttl: float | None = None) -> None:
        self._write(ns, key, orjson.dumps(value), ttl)

    def put_record(self, ns: str, key: str, record: BaseModel, ttl: float | None = None) -> None:
        blob = record_json(record)
        self._write(ns, key, blob, ttl)
        # Should this transaction roll back, the stored bytes differ and the entry is unused.
        self._records.put((ns, key), blob, record)

    def _write(self, ns: str, key: str, blob: bytes, ttl: float | None) -> None:
        expires_at = None if ttl is None else time.time() + ttl
        self._conn.execute(
            "INSERT OR REPLACE INTO docs (ns, key, value, expires_at) VALUES (?, ?, ?, ?)",
            (ns, key, blob, expires_at),
        )
        self._seen[ns, key] = blob

    def delete(self, ns: str, key: str) -> None:
        self._conn.execute("DELETE FROM docs WHERE ns = ? AND key = ?", (ns, key))
        self._seen[ns, key] = None

    def members(self, ns: str, key: str) -> set[str]:
        rows = self._conn.execute(
            "SELECT member FROM members WHERE ns = ? AND key = ?", (ns, key)
        ).fetchall()
        return {row[0] for row in rows}

    def first_members(self, ns: str, key: str, limit: int) -> list[str]:
        # The primary key (ns, key, member) serves this in order: no sort, no full scan.
        rows = self._conn.execute(
            "SELECT member FROM members WHERE ns = ? AND key = ? ORDER BY member LIMIT ?",
            (ns, key, limit),
        ).fetchall()
        return [row[0] for row in rows]

    def members_after(self, ns: str, key: str, after: str, limit: int) -> list[str]:
        rows = self._conn.execute(
            "SELECT member FROM members WHERE ns = ? AND key = ? AND member > ? "
            "ORDER BY member LIMIT ?",
            (ns, key, after, limit),
        ).fetchall()
        return [row[0] for row in rows]

    def member_count(self, ns: str, key: str) -> int:
        # Kept beside the set (COUNT(*) would walk every member of a crowded room).
        row = self._conn.execute(
            "SELECT value FROM member_counts WHERE ns = ? AND key = ?", (ns, key)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def add_member(self, ns: str, key: str, member: str) -> None:
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO members (ns, key, member) VALUES (?, ?, ?)", (ns, key, member)
        )
        if cursor.rowcount:
            self._conn.execute(
                "INSERT INTO member_counts (ns, key, value) VALUES (?, ?, 1) "
                "ON CONFLICT (ns, key) DO UPDATE SET value = value + 1",
                (ns, key),
            )

    def remove_member(self, ns: str, key: str, member: str) -> None:
        cursor = self._conn.execute(
            "DELETE FROM members WHERE ns = ? AND key = ? AND member = ?", (ns, key, member)
        )
        if cursor.rowcount:
            self._conn.execute(
                "UPDATE member_counts SET value = value - 1 WHERE ns = ? AND key = ?", (ns, key)
            )

    def counter(self, ns: str, key: str) -> int:
        row = self._conn.execute(
            "SELECT value FROM counters WHERE ns = ? AND key = ?", (ns, key)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def incr(self, ns: str, key: str) -> int:
        row = self._conn.execute(
            "INSERT INTO counters (ns, key, value) VALUES (?, ?, 1) "
            "ON CONFLICT (ns, key) DO UPDATE SET value = value + 1 RETURNING value",
            (ns, key),
        ).fetchone()
        return int(row[0])

    def log_event(self, topic: str, seq: int, payload: bytes) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO events (topic, seq, payload) VALUES (?, ?, ?)",
            (topic, seq, payload),
        )
        self._conn.execute(
            "DELETE FROM events WHERE topic = ? AND seq <= ?",
            (topic, seq - self._event_log_size),
        )


class SqliteStore(Store):
    """One connection per store object; share the file, not the object, between processes.
    A lock serializes threads of one process that share the object."""

    def __init__(
        self,
        path: str,
        *,
        event_log_size: int = DEFAULT_EVENT_LOG_SIZE,
        busy_timeout: float = 30.0,
    ) -> None:
        super().__init__(f"sqlite:///{path}", event_log_size)
        self.path = path
        # Re-entrant: transactions run inside batch(), which holds it for the whole batch.
        self._lock = threading.RLock()
        self._records = RecordCache()
        self._batch_depth = 0
        self._batch_open = False  # the batch's write transaction has begun
        self._batch_reading = False  # the read transaction its read-only jobs share is open
        self._batch_lost = False  # SQLite rolled the batch's transaction back on an error
        self._busy_timeout = busy_timeout
        self._writers: WriterQueue | None = None
        self._checkpointer: Checkpointer | None = None
        try:
            self._conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL, chosen: in WAL mode a commit is a write() into the WAL without an
            # fsync (the WAL is synced at checkpoints). A committed action, and the action id
            # recorded with it, survives any crash of the process (kill -9 included: the
            # bytes are in the OS), so a retried action is never applied twice. What it does
            # not survive is losing the machine itself (power, kernel panic): the last
            # transactions before the last checkpoint may then be lost, all or nothing, the
            # database never corrupt. FULL (an fsync per commit) would close that window at
            # a sync per action (README, "Store durability").
            self._conn.execute("PRAGMA synchronous = NORMAL")
            if _on_disk(path):
                self._writers = WriterQueue(path + WRITER_LOCK_SUFFIX)
                # Checkpoints off the writers' path (sqlite_writers.py); the background one
                # syncs the log at least every CHECKPOINT_INTERVAL_S after a commit.
                self._conn.execute("PRAGMA wal_autocheckpoint = 0")
                self._checkpointer = Checkpointer(path)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            self._close_helpers()
            raise StoreError(f"cannot open SQLite store {path!r}: {exc}") from exc

    def _migrate(self) -> None:
        self._begin()
        try:
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(f"database schema {version} is newer than {SCHEMA_VERSION}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            if version == 1:  # schema 2 added member_counts: count the sets once
                self._conn.execute(
                    "INSERT INTO member_counts (ns, key, value) "
                    "SELECT ns, key, COUNT(*) FROM members GROUP BY ns, key"
                )
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._conn.execute("ROLLBACK")
            self._release()
            raise
        self._conn.execute("COMMIT")
        self._release()

    def _begin(self) -> None:
        """Start a write transaction: the queue's turn, then SQLite's write lock."""
        if self._writers is not None:
            try:
                self._writers.acquire(self._busy_timeout)
            except WriterBusy as exc:
                raise StoreBusy(f"SQLite store busy: {exc}") from exc
            except OSError as exc:  # a file system without flock: SQLite's own lock will do
                log.warning(
                    "no writer queue for %s (%s); using SQLite's lock alone", self.path, exc
                )
                self._writers.close()
                self._writers = None
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self._release()
            # Only reached after busy_timeout: other writers held the lock all that time.
            raise StoreBusy(f"SQLite store busy: {exc}") from exc

    def _release(self) -> None:
        """The write transaction is over (committed or rolled back): the next writer's turn."""
        if self._writers is not None:
            self._writers.release()

    def _committed(self) -> None:
        self._release()
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def transaction(self, fn: Callable[[Tx], T]) -> T:
        with self._lock:
            if self._batch_depth:
                return self._batched(fn)
            self._begin()
            try:
                result = fn(_SqliteTx(self._conn, self.event_log_size, self._records))
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._release()
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite transaction failed: {exc}") from exc
                raise
            self._committed()
            return result

    def _batched(self, fn: Callable[[Tx], T]) -> T:
        """One transaction of a batch: a savepoint inside the batch's write transaction, so
        a failure undoes this one alone."""
        if self._batch_lost:
            raise StoreError("SQLite batch was rolled back")
        if not self._batch_open:
            self._end_read()
            self._begin()
            self._batch_open = True
        try:
            self._conn.execute("SAVEPOINT action")
            result = fn(_SqliteTx(self._conn, self.event_log_size, self._records))
            self._conn.execute("RELEASE action")
        except BaseException as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK TO action")
                self._conn.execute("RELEASE action")
            else:  # SQLite gave up the whole transaction (an I/O error...)
                self._batch_lost = True
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"SQLite transaction failed: {exc}") from exc
            raise
        return result

    @contextmanager
    def batch(self, redo: Batch | None = None) -> Iterator[Batch]:
        """Every transaction inside runs in one write transaction, committed at the end: one
        WAL append (and, with synchronous FULL, one sync) for the batch. The write lock is
        taken at the batch's first write and held to its end (so ``redo`` never has a part:
        none is refused)."""
        with self._lock:
            self._batch_depth += 1
            try:
                yield Batch()  # the write lock is held: no part is ever refused
            except BaseException:
                if self._batch_depth == 1:
                    self._end_batch("ROLLBACK")
                raise
            finally:
                self._batch_depth -= 1
            if self._batch_depth == 0:
                self._end_batch("COMMIT")

    def _end_batch(self, statement: str) -> None:
        self._end_read()
        lost, self._batch_lost = self._batch_lost, False
        if not self._batch_open:
            return
        self._batch_open = False
        try:
            if self._conn.in_transaction:
                self._conn.execute(statement)
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._release()
            raise StoreError(f"SQLite batch failed to commit: {exc}") from exc
        if statement == "COMMIT":
            self._committed()
        else:
            self._release()
        if lost and statement == "COMMIT":
            raise StoreError("SQLite rolled the batch back; none of it was applied")

    def read(self, fn: Callable[[Tx], T]) -> T:
        # A deferred BEGIN takes no lock until the first read, and then only a WAL read
        # mark: writers go on meanwhile, and the COMMIT of a transaction that wrote nothing
        # appends nothing to the WAL and syncs nothing.
        with self._lock:
            if self._batch_open:  # inside a batch that wrote: read what it wrote
                return fn(ReadOnlyTx(_SqliteTx(self._conn, self.event_log_size, self._records)))
            if self._batch_depth:
                return self._batch_read(fn)
            try:
                self._conn.execute("BEGIN")
                try:
                    return fn(ReadOnlyTx(_SqliteTx(self._conn, self.event_log_size, self._records)))
                finally:
                    self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite read failed: {exc}") from exc

    def _batch_read(self, fn: Callable[[Tx], T]) -> T:
        """A read-only job of a batch (they come before its writes, jobs.py): all of them
        share one read transaction, which ends before the batch's first write."""
        try:
            if not self._batch_reading:
                self._conn.execute("BEGIN")
                self._batch_reading = True
            return fn(ReadOnlyTx(_SqliteTx(self._conn, self.event_log_size, self._records)))
        except sqlite3.Error as exc:
            self._end_read()
            raise StoreError(f"SQLite read failed: {exc}") from exc

    def _end_read(self) -> None:
        if not self._batch_reading:
            return
        self._batch_reading = False
        if self._conn.in_transaction:
            try:
                self._conn.execute("COMMIT")  # wrote nothing: nothing appended, nothing synced
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")

    def events_since(self, topic: str, since_seq: int) -> list[bytes]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT payload FROM events WHERE topic = ? AND seq > ? ORDER BY seq",
                (topic, since_seq),
            ).fetchall()
        return [bytes(row[0]) for row in rows]

    def purge_expired(self) -> int:
        def purge(_tx: Tx) -> int:
            cursor = self._conn.execute(
                "DELETE FROM docs WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (time.time(),),
            )
            return cursor.rowcount

        return self.transaction(purge)

    def close(self) -> None:
        with self._lock:
            self._close_helpers()
            self._conn.close()

    def _close_helpers(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._writers is not None:
            self._writers.close()
            self._writers = None


#: The writers' queue file beside the database (``game.db`` -> ``game.db-writer``).
WRITER_LOCK_SUFFIX = "-writer"


def _on_disk(path: str) -> bool:
    """A file other processes can share (not ``:memory:`` nor a temporary database)."""
    return path not in ("", ":memory:") and not path.startswith("file:")
