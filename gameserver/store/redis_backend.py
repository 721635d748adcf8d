"""Redis backend: a worker's batch of actions, one round trip, through a server-side script.

Each worker keeps what it last read of every key together with that key's version
(:mod:`gameserver.store.redis_tx`). A transaction runs against that copy without asking Redis
anything, buffering its writes and noting the version of everything it read. It then sends
all of it in one JSON string to the commit script (:mod:`gameserver.store.redis_script`),
which runs atomically in Redis: if every version read is still current it applies the writes
and returns the new versions, otherwise it writes nothing and returns the current content of
the keys that changed. The worker refreshes its copy and runs the transaction again; a run
that then writes nothing and reads only keys that answer covered (a `look`, a refusal) saw
one moment of the store and needs no second trip. Read-only transactions send their read
versions alone.

In a batch (:meth:`RedisStore.batch`: the jobs a worker holds at once) the transactions are
staged instead, and all of them go in one call at the batch's end: a refused one sends its
job back to be run again (:class:`~gameserver.store.base.Batch`). In the steady state a batch
costs one round trip, its catch-ups' log reads included (:meth:`RedisStore.read_log`). A key
the worker never read is taken to be absent at version 0 and checked like any other, so a
cold worker costs a few more while it learns.

Key layout: ``{tag}:d:<ns>:<key>`` documents (a hash: ``v`` the JSON, ``n`` its version),
``{tag}:z:<ns>:<key>`` sets (a sorted set with every score 0, so members come back in order)
with their version at ``...:v``, ``{tag}:c:<ns>:<key>`` counters (the value is its own
version), ``{tag}:log:<topic>`` event logs, and ``{tag}:version``, the counter every version
comes from (versions never repeat, even for a key deleted and written again). The ``{tag}``
is a Redis Cluster hash tag: every key of one game is in one slot, so the script may touch any
of them (README, "Redis Cluster").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson
import redis

from .base import (
    DEFAULT_EVENT_LOG_SIZE,
    FIRST_PLACEHOLDER,
    LAST_PLACEHOLDER,
    Batch,
    LogRead,
    Store,
    StoreBusy,
    StoreError,
    Tx,
    WriteInRead,
)
from .redis_script import COMMIT_SCRIPT
from .redis_tx import ScriptTx, Undo, WorkerCopy, restore
from .redis_url import redis_client_url

T = TypeVar("T")

DEFAULT_PREFIX = "crossroads:"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisStore(Store):
    """``redis://host:port/db``; a ``?prefix=...`` query names the game (default
    ``crossroads:``; its keys are ``{crossroads}:...``) so several games can share a database.
    ``client`` replaces the connection made from the URL (tests count its round trips)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        event_log_size: int = DEFAULT_EVENT_LOG_SIZE,
        max_attempts: int = 200,
        client: redis.Redis | None = None,
    ) -> None:
        super().__init__(_redact(url), event_log_size)
        query = parse_qs(urlsplit(url).query)
        self.prefix = prefix or query.pop("prefix", [DEFAULT_PREFIX])[0]
        self.tag = "{" + self.prefix.rstrip(":") + "}"
        self.max_attempts = max_attempts
        try:
            self._client = client or redis.Redis.from_url(redis_client_url(url))
        except ValueError as exc:
            raise StoreError(f"bad Redis URL {self.url!r}: {exc}") from exc
        self._script = self._client.register_script(COMMIT_SCRIPT)
        self._version_key = f"{self.tag}:version"
        self.copy = WorkerCopy(self.tag, event_log_size)
        # The open batch: its transactions staged (each with its part), not yet sent, and
        # what the copy held before they wrote to it.
        self._batch: Batch | None = None
        self._staged: list[tuple[ScriptTx, int, Hashable]] = []
        self._undo: Undo = {}
        self._next_marker = -2  # markers go down from -2 and are never used twice
        self._next_placeholder = FIRST_PLACEHOLDER  # of the open batch (Tx.reserve)
        # The open batch's parts that may stand on what they read before (batch's redo).
        self._settled_reads: dict[Hashable, dict[str, int]] = {}
        # The open batch's log reads (read_log), sent with its staged transactions.
        self._log_reads: list[LogRead] = []

    def transaction(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, writable=True)

    def read(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, writable=False)

    @contextmanager
    def batch(self, redo: Batch | None = None) -> Iterator[Batch]:
        """The transactions of the batch's parts are run on the copy and sent together, in
        one round trip at its end (:mod:`gameserver.store.redis_script`): each part's
        transactions see what the earlier parts wrote, and a part whose data had changed in
        Redis meanwhile (or that read what a refused part wrote) is refused, to be run
        again. A transaction outside any part sends what is staged first, then commits by
        itself.

        Run again in a batch opened with ``redo=``, a refused part that only read needs no
        second check when it reads what it read before, at the versions its refusal left in
        the copy (``Batch.settled_reads``): the script checked all of it in its one call,
        sent what had changed, and the copy took every later write of that call, so those
        versions are one moment of the store, after the part's request came (as
        ``read_only_within`` in :meth:`_run`). Most refusals are such reads, a `look` or a
        catch-up on a copy another worker's commit had just put behind."""
        if self._batch is not None:  # nested: the outer batch commits
            yield self._batch
            return
        self.copy.forget_if_large()
        batch = self._batch = Batch()
        self._settled_reads = redo.settled_reads if redo is not None else {}
        self._next_placeholder = FIRST_PLACEHOLDER
        try:
            try:
                yield batch
            except BaseException:
                self._drop_staged()
                raise
            self._send_staged()
        finally:
            self._batch = None
            self._settled_reads = {}

    def _run(self, fn: Callable[[Tx], T], *, writable: bool) -> T:
        if self._batch is not None:
            if self._batch.part is not None:
                return self._run_staged(fn, writable, self._batch.part)
            self._send_staged()  # a transaction of its own sees only committed data
        else:
            self.copy.forget_if_large()
        # What the last refused attempt read, at the versions its answer left in the copy:
        # one atomic look at Redis saw all of it current (or sent what was not). A retry that
        # writes nothing and reads only those keys at those versions saw one consistent
        # moment of the store, so it needs no second round trip (a `look`, or a refusal).
        checked: dict[str, int] = {}

        def settled(tx: ScriptTx) -> bool:
            return tx.read_only_within(checked) or self._commit(tx)

        for attempt in range(self.max_attempts):
            done, result, tx = self._attempt(fn, writable, settled)
            if done:
                return cast(T, result)
            checked = tx.read_versions()
            self._pause(attempt)
        raise StoreBusy(f"Redis transaction kept conflicting after {self.max_attempts} attempts")

    def _run_staged(self, fn: Callable[[Tx], T], writable: bool, part: Hashable) -> T:
        """Run once on the copy and stage the outcome, a failure included: a failure on
        data that turns out stale is refused with its part, which then runs again."""

        checked = self._settled_reads.get(part)

        def staged(tx: ScriptTx) -> bool:
            if checked is None or not tx.read_only_within(checked):
                self._stage(tx, part)
            return True

        return cast(T, self._attempt(fn, writable, staged, self._placeholder)[1])

    def _placeholder(self) -> int | None:
        """The next placeholder of the open batch, None once they are all used."""
        if self._next_placeholder > LAST_PLACEHOLDER:
            return None
        self._next_placeholder += 1
        return -(self._next_placeholder - 1)

    def _attempt(
        self,
        fn: Callable[[Tx], T],
        writable: bool,
        settled: Callable[[ScriptTx], bool],
        placeholders: Callable[[], int | None] | None = None,
    ) -> tuple[bool, T | None, ScriptTx]:
        """Run ``fn`` once on the copy. ``settled`` commits (or stages) the outcome: True if
        it stands, and then a failure of ``fn`` is raised; False to run ``fn`` again.
        ``placeholders``: for reservations the script numbers (staged transactions)."""
        tx = ScriptTx(self.copy, writable, placeholders)
        try:
            result = fn(tx)
        except WriteInRead:
            raise
        except Exception:
            tx.discard_writes()  # maybe the copy was stale: only a failure that stands counts
            if settled(tx):
                raise
            return False, None, tx
        return settled(tx), result, tx

    def _stage(self, tx: ScriptTx, part: Hashable) -> None:
        if tx.empty:
            return
        marker = self._next_marker
        self._next_marker -= 1
        if tx.writes:
            tx.stage(marker, self._undo)
        self._staged.append((tx, marker, part))

    def _drop_staged(self) -> None:
        restore(self._undo)
        self._undo = {}
        self._staged = []
        self._log_reads = []

    def _send_staged(self) -> None:
        """One round trip for every staged transaction; the refused ones' parts go to the
        batch's ``redo``."""
        staged, logs = self._staged, self._log_reads
        if not staged and not logs:
            return
        try:
            parts: dict[Hashable, int] = {}
            requests = [
                tx.request(marker, parts.setdefault(part, len(parts)))
                for tx, marker, part in staged
            ]
            if requests:
                answers = self._call(requests, logs)
            else:
                answers = []
                self._read_logs(logs)
        finally:
            self._drop_staged()  # the copy as committed; the answers then update it in order
        batch = self._batch
        assert batch is not None
        for (tx, _, part), answer in zip(staged, answers, strict=True):
            if not self._take(tx, answer):
                batch.refused(part)
        # Read only after every answer is in the copy: see batch(). A refused part that
        # wrote, or read what another part staged, runs again as staged.
        settled, staged_again = batch.settled_reads, set()
        for tx, _, part in staged:
            if part not in batch.redo or part in staged_again:
                continue
            if tx.writes or tx.read_staged_writes():
                staged_again.add(part)
                settled.pop(part, None)
            else:
                settled.setdefault(part, {}).update(tx.read_versions())

    def _commit(self, tx: ScriptTx) -> bool:
        """One round trip: True if committed, False (the copy refreshed) if a read was stale."""
        if tx.empty:
            return True
        (answer,) = self._call([tx.request()])
        return self._take(tx, answer)

    def _take(self, tx: ScriptTx, answer: dict[str, Any]) -> bool:
        """Bring the copy up to the script's answer for ``tx``: its writes at their new
        versions (True), or the current content of what it read stale (False)."""
        if answer["ok"]:
            assigned = _assigned(answer)
            tx.committed(answer["v"] or [], assigned)
            if self._batch is not None:  # for the answers of the batch's jobs (Batch.assigned)
                self._batch.assigned.update(assigned)
            self.copy.refresh(answer["fresh"] or [])
            return True
        self.copy.refresh(answer["stale"])
        return False

    def _call(
        self, requests: list[bytes], logs: list[LogRead] | None = None
    ) -> list[dict[str, Any]]:
        """The commit script's answers to ``requests``; ``logs`` are read in the same round
        trip, after the script (a pipeline: what they bring is at least as new as the
        commit)."""
        args = [b"[" + b",".join(requests) + b"]", self._version_key]
        try:
            if logs:
                raw = self._pipelined(args, logs)
            else:
                raw = self._script(keys=[self._version_key], args=args)
        except redis.RedisError as exc:
            raise StoreError(f"Redis store {self.url!r} failed: {exc}") from exc
        return cast(list[dict[str, Any]], orjson.loads(cast(bytes, raw)))

    def _pipelined(self, args: list[bytes], logs: list[LogRead]) -> bytes:
        """The script by its digest, then each log's read, in one round trip. (redis-py's
        Script in a pipeline would first ask whether the script is loaded: a second trip.)"""
        for _ in range(2):
            pipe = self._client.pipeline(transaction=False)
            pipe.evalsha(self._script.sha, 1, self._version_key, *args)
            self._queue_log_reads(pipe, logs)
            raw, *payloads = pipe.execute(raise_on_error=False)
            if not isinstance(raw, redis.exceptions.NoScriptError):
                break
            # A Redis restarted or flushed since: the script ran nowhere, so load it and
            # send the whole again (the log reads only read).
            self._client.script_load(COMMIT_SCRIPT)
        for answer in (raw, *payloads):
            if isinstance(answer, Exception):
                raise answer
        self._deliver(logs, payloads)
        return cast(bytes, raw)

    def _read_logs(self, logs: list[LogRead]) -> None:
        """The logs of a batch that staged no transaction: one round trip for all."""
        pipe = self._client.pipeline(transaction=False)
        self._queue_log_reads(pipe, logs)
        try:
            self._deliver(logs, pipe.execute())
        except redis.RedisError as exc:
            raise StoreError(f"Redis store {self.url!r} failed: {exc}") from exc

    def _queue_log_reads(self, pipe: Any, logs: list[LogRead]) -> None:
        for log in logs:
            pipe.zrangebyscore(self._log_key(log.topic), f"({log.since_seq}", "+inf")

    @staticmethod
    def _deliver(logs: list[LogRead], payloads: list[Any]) -> None:
        for log, answer in zip(logs, payloads, strict=True):
            log.deliver(cast(list[bytes], answer))

    @staticmethod
    def _pause(attempt: int) -> None:
        # The copy is fresh now, so the first retries go at once; past a few, colliding
        # workers spread out at random instead of colliding again.
        if attempt >= 2:
            time.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))

    def events_since(self, topic: str, since_seq: int) -> list[bytes]:
        key = self._log_key(topic)
        try:
            return cast(list[bytes], self._client.zrangebyscore(key, f"({since_seq}", "+inf"))
        except redis.RedisError as exc:
            raise StoreError(f"Redis store {self.url!r} failed: {exc}") from exc

    def read_log(self, topic: str, since_seq: int) -> LogRead:
        """In a batch's part, read with the batch's commit, in its round trip: a catch-up
        costs no trip of its own. (Read at once, the catch-ups' log reads were nearly half
        of the workers' round trips in the closed loop with 50 listening players: 1,143
        against 1,261 script calls in 6 s, redis-server's commandstats.)"""
        batch = self._batch
        if batch is None or batch.part is None:
            return super().read_log(topic, since_seq)
        log = LogRead(topic, since_seq)
        self._log_reads.append(log)
        return log

    def _log_key(self, topic: str) -> str:
        return f"{self.tag}:log:{topic}"

    def purge_expired(self) -> int:
        return 0  # documents carry native Redis expiry

    def close(self) -> None:
        self._client.close()


def _assigned(answer: dict[str, Any]) -> dict[int, int]:
    """Placeholder -> value, of each reservation a committed transaction made."""
    return {int(placeholder): int(value) for placeholder, value in answer["s"] or ()}
