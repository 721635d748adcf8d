"""Redis backend: one action, one round trip, through a server-side script.

Each worker keeps what it last read of every key together with that key's version. A
transaction runs against that copy without asking Redis anything, buffering its writes and
noting the version of everything it read. It then sends all of it in one JSON string to
:data:`COMMIT_SCRIPT`, which runs atomically in Redis: if every version read is still current
it applies the writes and returns the new versions, otherwise it writes nothing and returns the
current content of the keys that changed. The worker refreshes its copy and runs the
transaction again; a run that then writes nothing and reads only keys that answer covered (a
`look`, a refusal) saw one moment of the store and needs no second trip. Read-only
transactions send their read versions alone.

In the steady state an action costs one round trip (its versions were current). A key the
worker never read is taken to be absent at version 0 and checked like any other, so a cold
worker costs a few more while it learns.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson
import redis
from pydantic import BaseModel

from .base import (
    DEFAULT_EVENT_LOG_SIZE,
    R,
    RecordCache,
    Store,
    StoreBusy,
    StoreError,
    Tx,
    WriteInRead,
    record_json,
)

T = TypeVar("T")

DEFAULT_PREFIX = "crossroads:"
#: Keys whose last-read content a worker remembers; beyond this it forgets them all (and
#: learns again what it uses, a round trip per key at worst).
CACHE_LIMIT = 200_000

#: Checks the versions read, then applies the writes, atomically. ARGV[1] is the JSON request
#: ``{"r": [[key, kind, version, want], ...], "w": [[op, key, ...], ...]}``; the answer is
#: ``{"ok": true, "v": [[key, version], ...]}`` or ``{"ok": false, "stale": [...]}``.
COMMIT_SCRIPT = """
local req = cjson.decode(ARGV[1])
local stale = {}
for _, r in ipairs(req.r) do
  local key, kind, seen, want = r[1], r[2], r[3], r[4]
  if kind == 'd' then
    local got = redis.call('HMGET', key, 'n', 'v')
    local n = tonumber(got[1]) or 0
    if n ~= seen then stale[#stale + 1] = {key, n, got[2] or false} end
  elseif kind == 'c' then
    local n = tonumber(redis.call('GET', key)) or 0
    if n ~= seen then stale[#stale + 1] = {key, n} end
  else
    local n = tonumber(redis.call('GET', key .. ':v')) or 0
    if n ~= seen then
      local members = redis.call('ZRANGE', key, 0, want)
      stale[#stale + 1] = {key, n, redis.call('ZCARD', key), members, want}
    end
  end
end
if #stale > 0 then return cjson.encode({ok = false, stale = stale}) end
local versions = {}
local known = {}
local version_key = ARGV[2]
for _, w in ipairs(req.w) do
  local op, key = w[1], w[2]
  if op == 'put' then
    local n = redis.call('INCR', version_key)
    redis.call('HSET', key, 'n', n, 'v', w[3])
    if w[4] > 0 then redis.call('PEXPIRE', key, w[4]) else redis.call('PERSIST', key) end
    versions[#versions + 1] = {key, n}
  elseif op == 'del' then
    redis.call('DEL', key)
  elseif op == 'zadd' or op == 'zrem' then
    -- w[4]: the version the worker knew; it may keep its copy if that was current.
    if known[key] == nil then
      known[key] = (tonumber(redis.call('GET', key .. ':v')) or 0) == w[4]
    end
    if op == 'zadd' then redis.call('ZADD', key, 0, w[3]) else redis.call('ZREM', key, w[3]) end
    local n = redis.call('INCR', version_key)
    redis.call('SET', key .. ':v', n)
    versions[#versions + 1] = {key, n, known[key]}
  elseif op == 'set' then
    redis.call('SET', key, w[3])
  elseif op == 'log' then
    redis.call('ZADD', key, w[3], w[4])
    redis.call('ZREMRANGEBYRANK', key, 0, -w[5] - 1)
  end
end
return cjson.encode({ok = true, v = versions})
"""


@dataclass(slots=True)
class _SetView:
    """What a worker knows of a set: its version, size and smallest members (all of them if
    ``complete``)."""

    version: int
    count: int
    first: list[str]
    complete: bool

    def covers(self, want: int) -> bool:
        """Whether it answers a read of the ``want`` smallest members (-1: all)."""
        return self.complete or (want >= 0 and len(self.first) >= want)


_EMPTY_SET = _SetView(0, 0, [], True)


class _Overlay:
    """A transaction's changes to one set, applied over what the worker knows of it."""

    __slots__ = ("added", "delta", "removed")

    def __init__(self) -> None:
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.delta = 0

    def apply(self, view: _SetView) -> _SetView:
        members = (set(view.first) | self.added) - self.removed
        if not view.complete:  # keep only what is surely among the smallest
            cutoff = view.first[-1] if view.first else ""
            members = {member for member in members if member <= cutoff}
        return _SetView(view.version, view.count + self.delta, sorted(members), view.complete)


def _membership(overlay: _Overlay, view: _SetView, member: str) -> bool | None:
    """Whether ``member`` is in the set as this transaction sees it; None: unknown."""
    if member in overlay.added:
        return True
    if member in overlay.removed:
        return False
    if member in view.first:
        return True
    return False if view.complete else None


class _ScriptTx(Tx):
    """Reads the worker's copy, noting each version; buffers writes for the script."""

    def __init__(self, store: RedisStore, writable: bool) -> None:
        self.writable = writable
        self._store = store
        self._reads: dict[str, list[Any]] = {}
        self._docs: dict[str, tuple[bytes | None, float | None]] = {}
        self._records: dict[str, BaseModel] = {}  # records written, by key
        self._sets: dict[str, _Overlay] = {}
        self._set_ops: list[list[Any]] = []
        self._counters: dict[str, int] = {}
        self._events: list[list[Any]] = []

    def _key(self, kind: str, ns: str, key: str) -> str:
        return f"{self._store.tag}:{kind}:{ns}:{key}"

    def _check_writable(self) -> None:
        if not self.writable:
            raise WriteInRead("a write in a read-only transaction")

    # -- documents --------------------------------------------------------------------------

    def get(self, ns: str, key: str) -> Any | None:
        full = self._key("d", ns, key)
        if full in self._docs:
            raw = self._docs[full][0]
        else:
            version, raw = self._store.docs.get(full, (0, None))
            self._reads.setdefault(full, [full, "d", version, 0])
        return None if raw is None else orjson.loads(raw)

    def get_record(self, ns: str, key: str, model: type[R]) -> R | None:
        full = self._key("d", ns, key)
        if full in self._docs:
            raw = self._docs[full][0]
            return None if raw is None else model.model_validate_json(raw)
        version, raw = self._store.docs.get(full, (0, None))
        self._reads.setdefault(full, [full, "d", version, 0])
        if raw is None:
            return None
        # Keyed by version: the record validated (or written) at this version before.
        record = self._store.records.get(full, version, model)
        if record is None:
            record = model.model_validate_json(raw)
            self._store.records.put(full, version, record)
        return record

    def put(self, ns: str, key: str, value: Any, ttl: float | None = None) -> None:
        self._check_writable()
        full = self._key("d", ns, key)
        self._docs[full] = (orjson.dumps(value), ttl)
        self._records.pop(full, None)

    def put_record(self, ns: str, key: str, record: BaseModel, ttl: float | None = None) -> None:
        self._check_writable()
        full = self._key("d", ns, key)
        self._docs[full] = (record_json(record), ttl)
        self._records[full] = record

    def delete(self, ns: str, key: str) -> None:
        self._check_writable()
        full = self._key("d", ns, key)
        self._docs[full] = (None, None)
        self._records.pop(full, None)

    # -- sets -------------------------------------------------------------------------------

    def _view(self, ns: str, key: str, want: int) -> tuple[str, _SetView]:
        full = self._key("z", ns, key)
        view = self._store.sets.get(full, _EMPTY_SET)
        read = self._reads.get(full)
        # A view too short for this read is checked with version -1, which never matches:
        # the script then sends what is needed.
        version = view.version if view.covers(want) else -1
        if read is None:
            self._reads[full] = [full, "z", version, want]
        else:
            if version < 0:
                read[2] = -1
            read[3] = -1 if -1 in (read[3], want) else max(read[3], want)
        if full in self._sets:
            view = self._sets[full].apply(view)
        return full, view

    def members(self, ns: str, key: str) -> set[str]:
        return set(self._view(ns, key, -1)[1].first)

    def first_members(self, ns: str, key: str, limit: int) -> list[str]:
        return self._view(ns, key, limit)[1].first[:limit]

    def member_count(self, ns: str, key: str) -> int:
        return self._view(ns, key, 0)[1].count

    def add_member(self, ns: str, key: str, member: str) -> None:
        self._check_writable()
        self._change(ns, key, member, adding=True)

    def remove_member(self, ns: str, key: str, member: str) -> None:
        self._check_writable()
        self._change(ns, key, member, adding=False)

    def _change(self, ns: str, key: str, member: str, *, adding: bool) -> None:
        full = self._key("z", ns, key)
        view = self._store.sets.get(full, _EMPTY_SET)
        overlay = self._sets.setdefault(full, _Overlay())
        known = _membership(overlay, view, member)
        # Beyond a partial view membership is unknown: callers add only what they know is
        # absent and remove what they know is present (the script's ZADD/ZREM are exact).
        if adding:
            overlay.delta += 0 if known is True else 1
            overlay.added.add(member)
            overlay.removed.discard(member)
        else:
            overlay.delta -= 0 if known is False else 1
            overlay.removed.add(member)
            overlay.added.discard(member)
        self._set_ops.append(["zadd" if adding else "zrem", full, member, view.version])

    # -- counters and logs -------------------------------------------------------------------

    def counter(self, ns: str, key: str) -> int:
        full = self._key("c", ns, key)
        if full in self._counters:
            return self._counters[full]
        value = self._store.counters.get(full, 0)
        self._reads.setdefault(full, [full, "c", value, 0])
        return value

    def incr(self, ns: str, key: str) -> int:
        self._check_writable()
        full = self._key("c", ns, key)
        self._counters[full] = self.counter(ns, key) + 1
        return self._counters[full]

    def log_event(self, topic: str, seq: int, payload: bytes) -> None:
        self._check_writable()
        key = f"{self._store.tag}:log:{topic}"
        self._events.append(["log", key, seq, payload.decode(), self._store.event_log_size])

    # -- commit -----------------------------------------------------------------------------

    def discard_writes(self) -> None:
        """Keep only the reads (to check them after a failure)."""
        self._docs.clear()
        self._records.clear()
        self._sets.clear()
        self._set_ops.clear()
        self._counters.clear()
        self._events.clear()

    @property
    def empty(self) -> bool:
        return not (self._reads or self._docs or self._set_ops or self._counters or self._events)

    @property
    def writes(self) -> bool:
        return bool(self._docs or self._set_ops or self._counters or self._events)

    def read_versions(self) -> dict[str, int]:
        """Each key read, with the version this worker's copy now holds of it."""
        return {key: self._current_version(key, read[1]) for key, read in self._reads.items()}

    def _current_version(self, key: str, kind: str) -> int:
        store = self._store
        if kind == "d":
            return store.docs.get(key, (0, None))[0]
        if kind == "c":
            return store.counters.get(key, 0)
        return store.sets.get(key, _EMPTY_SET).version

    def read_only_within(self, checked: dict[str, int]) -> bool:
        """True if this transaction wrote nothing and read only keys of ``checked`` at those
        versions (a set's read also covered by the view: -1 never matches)."""
        if self.writes:
            return False
        return all(checked.get(key, -1) == read[2] != -1 for key, read in self._reads.items())

    def request(self) -> bytes:
        writes: list[list[Any]] = []
        for key, (raw, ttl) in self._docs.items():
            if raw is None:
                writes.append(["del", key])
            else:
                ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
                writes.append(["put", key, raw.decode(), ttl_ms])
        writes.extend(self._set_ops)
        writes.extend(["set", key, value] for key, value in self._counters.items())
        writes.extend(self._events)
        return orjson.dumps({"r": list(self._reads.values()), "w": writes})

    def committed(self, versions: list[list[Any]]) -> None:
        """Remember what this transaction wrote, at the versions the script gave it."""
        store = self._store
        new_versions = {entry[0]: int(entry[1]) for entry in versions}
        # A set written without being read: the copy stays good if it was current before.
        current = {entry[0] for entry in versions if len(entry) > 2 and entry[2]}
        for key, (raw, _ttl) in self._docs.items():
            version = new_versions.get(key, 0)
            store.remember_doc(key, version, raw)
            if key in self._records:  # never validated again while at this version
                store.records.put(key, version, self._records[key])
        for key, overlay in self._sets.items():
            if key not in self._reads and key not in current:
                store.sets.pop(key, None)
                continue
            view = overlay.apply(store.sets.get(key, _EMPTY_SET))
            view.version = new_versions.get(key, view.version)
            store.sets[key] = view
        store.counters.update(self._counters)


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
        clean_url = urlunsplit(urlsplit(url)._replace(query=""))
        try:
            self._client = client or redis.Redis.from_url(clean_url)
        except ValueError as exc:
            raise StoreError(f"bad Redis URL {self.url!r}: {exc}") from exc
        self._script = self._client.register_script(COMMIT_SCRIPT)
        self._version_key = f"{self.tag}:version"
        self.docs: dict[str, tuple[int, bytes | None]] = {}
        self.records = RecordCache()
        self.sets: dict[str, _SetView] = {}
        self.counters: dict[str, int] = {}

    def remember_doc(self, key: str, version: int, raw: bytes | None) -> None:
        self.docs[key] = (version, raw)

    def _forget_if_large(self) -> None:
        if len(self.docs) + len(self.sets) + len(self.counters) > CACHE_LIMIT:
            self.docs.clear()
            self.sets.clear()
            self.counters.clear()

    def transaction(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, writable=True)

    def read(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, writable=False)

    def _run(self, fn: Callable[[Tx], T], *, writable: bool) -> T:
        self._forget_if_large()
        # What the last refused attempt read, at the versions its answer left in the copy:
        # one atomic look at Redis saw all of it current (or sent what was not). A retry that
        # writes nothing and reads only those keys at those versions saw one consistent
        # moment of the store, so it needs no second round trip (a `look`, or a refusal).
        checked: dict[str, int] = {}
        try:
            for attempt in range(self.max_attempts):
                tx = _ScriptTx(self, writable)
                try:
                    result = fn(tx)
                except WriteInRead:
                    raise
                except Exception:
                    # Maybe the copy was stale: only a failure on current data counts.
                    tx.discard_writes()
                    if tx.read_only_within(checked) or self._commit(tx):
                        raise
                    checked = tx.read_versions()
                    self._pause(attempt)
                    continue
                if tx.read_only_within(checked) or self._commit(tx):
                    return result
                checked = tx.read_versions()
                self._pause(attempt)
        except redis.RedisError as exc:
            raise StoreError(f"Redis store {self.url!r} failed: {exc}") from exc
        raise StoreBusy(f"Redis transaction kept conflicting after {self.max_attempts} attempts")

    def _commit(self, tx: _ScriptTx) -> bool:
        """One round trip: True if committed, False (the copy refreshed) if a read was stale."""
        if tx.empty:
            return True
        answer = orjson.loads(
            cast(
                bytes,
                self._script(keys=[self._version_key], args=[tx.request(), self._version_key]),
            )
        )
        if answer["ok"]:
            tx.committed(answer["v"] or [])
            return True
        for entry in answer["stale"]:
            key, version = entry[0], int(entry[1])
            if len(entry) == 2:
                self.counters[key] = version
            elif len(entry) == 3:
                raw = entry[2]
                self.docs[key] = (version, None if raw is False else raw.encode())
            else:
                members, want = list(entry[3] or []), int(entry[4])
                count = int(entry[2])
                self.sets[key] = _SetView(
                    version, count, members, want < 0 or len(members) >= count
                )
        return False

    @staticmethod
    def _pause(attempt: int) -> None:
        # The copy is fresh now, so the first retries go at once; past a few, colliding
        # workers spread out at random instead of colliding again.
        if attempt >= 2:
            time.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))

    def events_since(self, topic: str, since_seq: int) -> list[bytes]:
        key = f"{self.tag}:log:{topic}"
        try:
            return cast(list[bytes], self._client.zrangebyscore(key, f"({since_seq}", "+inf"))
        except redis.RedisError as exc:
            raise StoreError(f"Redis store {self.url!r} failed: {exc}") from exc

    def purge_expired(self) -> int:
        return 0  # documents carry native Redis expiry

    def close(self) -> None:
        self._client.close()
