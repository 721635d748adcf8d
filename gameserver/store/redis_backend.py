"""Redis backend with optimistic transactions (WATCH / MULTI / EXEC, retried on conflict).

Every key is WATCHed before it is first read, and writes are buffered in the transaction and
sent in one MULTI/EXEC at the end. If any watched key changed meanwhile, EXEC fails and the
whole function runs again on fresh data, so each committed transaction behaved as if it ran alone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson
import redis
from redis.client import Pipeline

from .base import DEFAULT_EVENT_LOG_SIZE, Store, StoreBusy, StoreError, Tx, WriteInRead

T = TypeVar("T")

DEFAULT_PREFIX = "crossroads:"


class _RedisTx(Tx):
    """Buffers writes over a watching pipeline; reads go through the buffer first."""

    def __init__(
        self, pipe: Pipeline, prefix: str, event_log_size: int, writable: bool = True
    ) -> None:
        self.writable = writable
        self._pipe = pipe
        self._prefix = prefix
        self._event_log_size = event_log_size
        self._watched: set[str] = set()
        self._docs: dict[str, bytes | None] = {}
        self._dirty_docs: dict[str, float | None] = {}  # key -> ttl
        self._sets: dict[str, set[str]] = {}
        self._original_sets: dict[str, frozenset[str]] = {}
        self._counters: dict[str, int] = {}
        self._dirty_counters: set[str] = set()
        self._events: list[tuple[str, int, bytes]] = []

    def _key(self, kind: str, ns: str, key: str) -> str:
        return f"{self._prefix}{kind}:{ns}:{key}"

    def _watch(self, key: str) -> None:
        if key not in self._watched:
            self._pipe.watch(key)  # type: ignore[no-untyped-call]
            self._watched.add(key)

    def _doc(self, key: str) -> bytes | None:
        if key not in self._docs:
            self._watch(key)
            self._docs[key] = cast(bytes | None, self._pipe.get(key))
        return self._docs[key]

    def _set(self, key: str) -> set[str]:
        if key not in self._sets:
            self._watch(key)
            raw_members = cast(set[bytes], self._pipe.smembers(key))
            loaded = {member.decode() for member in raw_members}
            self._original_sets[key] = frozenset(loaded)
            self._sets[key] = loaded
        return self._sets[key]

    def _counter(self, key: str) -> int:
        if key not in self._counters:
            self._watch(key)
            raw = self._pipe.get(key)
            self._counters[key] = 0 if raw is None else int(raw)
        return self._counters[key]

    def _check_writable(self) -> None:
        if not self.writable:
            raise WriteInRead("a write in a read-only transaction")

    def get(self, ns: str, key: str) -> Any | None:
        raw = self._doc(self._key("d", ns, key))
        return None if raw is None else orjson.loads(raw)

    def put(self, ns: str, key: str, value: Any, ttl: float | None = None) -> None:
        self._check_writable()
        full = self._key("d", ns, key)
        self._docs[full] = orjson.dumps(value)
        self._dirty_docs[full] = ttl

    def delete(self, ns: str, key: str) -> None:
        self._check_writable()
        full = self._key("d", ns, key)
        self._docs[full] = None
        self._dirty_docs[full] = None

    def members(self, ns: str, key: str) -> set[str]:
        return set(self._set(self._key("s", ns, key)))

    def first_members(self, ns: str, key: str, limit: int) -> list[str]:
        return sorted(self._set(self._key("s", ns, key)))[:limit]

    def member_count(self, ns: str, key: str) -> int:
        return len(self._set(self._key("s", ns, key)))

    def add_member(self, ns: str, key: str, member: str) -> None:
        self._check_writable()
        self._set(self._key("s", ns, key)).add(member)

    def remove_member(self, ns: str, key: str, member: str) -> None:
        self._check_writable()
        self._set(self._key("s", ns, key)).discard(member)

    def counter(self, ns: str, key: str) -> int:
        return self._counter(self._key("c", ns, key))

    def incr(self, ns: str, key: str) -> int:
        self._check_writable()
        full = self._key("c", ns, key)
        self._counters[full] = self._counter(full) + 1
        self._dirty_counters.add(full)
        return self._counters[full]

    def log_event(self, topic: str, seq: int, payload: bytes) -> None:
        self._check_writable()
        self._events.append((f"{self._prefix}log:{topic}", seq, payload))

    def commit(self) -> None:
        """Send the buffered writes; raises ``redis.WatchError`` if a watched key changed."""
        pipe = self._pipe
        pipe.multi()
        for key, ttl in self._dirty_docs.items():
            value = self._docs[key]
            if value is None:
                pipe.delete(key)
            elif ttl is None:
                pipe.set(key, value)
            else:
                pipe.set(key, value, px=max(1, int(ttl * 1000)))
        for key, members in self._sets.items():
            original = self._original_sets[key]
            if added := members - original:
                pipe.sadd(key, *added)
            if removed := original - members:
                pipe.srem(key, *removed)
        for key in self._dirty_counters:
            pipe.set(key, self._counters[key])
        for key, seq, payload in self._events:
            pipe.zadd(key, {payload: seq})
            pipe.zremrangebyrank(key, 0, -self._event_log_size - 1)
        pipe.execute()

    def reads_still_valid(self) -> bool:
        """Whether nothing this transaction read has changed since (an empty EXEC tells)."""
        self._pipe.multi()
        try:
            self._pipe.execute()
        except redis.WatchError:
            return False
        return True


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisStore(Store):
    """``redis://host:port/db``; a ``?prefix=...`` query sets the key prefix (default
    ``crossroads:``) so several games can share one database."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        event_log_size: int = DEFAULT_EVENT_LOG_SIZE,
        max_attempts: int = 200,
    ) -> None:
        super().__init__(_redact(url), event_log_size)
        query = parse_qs(urlsplit(url).query)
        self.prefix = prefix or query.pop("prefix", [DEFAULT_PREFIX])[0]
        self.max_attempts = max_attempts
        clean_url = urlunsplit(urlsplit(url)._replace(query=""))
        try:
            self._client = redis.Redis.from_url(clean_url)
        except ValueError as exc:
            raise StoreError(f"bad Redis URL {self.url!r}: {exc}") from exc

    def transaction(self, fn: Callable[[Tx], T]) -> T:
        try:
            for attempt in range(self.max_attempts):
                with self._client.pipeline(transaction=True) as pipe:
                    tx = _RedisTx(pipe, self.prefix, self.event_log_size)
                    try:
                        result = fn(tx)
                    except Exception:
                        # The failure may come from an inconsistent view (keys read at
                        # different moments); only trust it if the reads are still current.
                        if tx.reads_still_valid():
                            raise
                        self._back_off(attempt)
                        continue
                    try:
                        tx.commit()
                    except redis.WatchError:
                        self._back_off(attempt)
                        continue
                    return result
        except redis.RedisError as exc:
            raise StoreError(f"Redis store {self.url!r} failed: {exc}") from exc
        raise StoreBusy(f"Redis transaction kept conflicting after {self.max_attempts} attempts")

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Optimistic like :meth:`transaction`, with nothing to write: the result counts once
        an empty EXEC shows that nothing read changed meanwhile."""
        try:
            for attempt in range(self.max_attempts):
                with self._client.pipeline(transaction=True) as pipe:
                    tx = _RedisTx(pipe, self.prefix, self.event_log_size, writable=False)
                    try:
                        result = fn(tx)
                    except WriteInRead:
                        raise
                    except Exception:
                        if tx.reads_still_valid():
                            raise
                        self._back_off(attempt)
                        continue
                    if tx.reads_still_valid():
                        return result
                    self._back_off(attempt)
        except redis.RedisError as exc:
            raise StoreError(f"Redis store {self.url!r} failed: {exc}") from exc
        raise StoreBusy(f"Redis read kept conflicting after {self.max_attempts} attempts")

    @staticmethod
    def _back_off(attempt: int) -> None:
        # Randomized so that colliding workers spread out instead of colliding again.
        time.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))

    def events_since(self, topic: str, since_seq: int) -> list[bytes]:
        key = f"{self.prefix}log:{topic}"
        try:
            return cast(list[bytes], self._client.zrangebyscore(key, f"({since_seq}", "+inf"))
        except redis.RedisError as exc:
            raise StoreError(f"Redis store {self.url!r} failed: {exc}") from exc

    def purge_expired(self) -> int:
        return 0  # documents carry native Redis expiry

    def close(self) -> None:
        self._client.close()
