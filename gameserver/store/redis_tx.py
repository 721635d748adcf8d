"""What a Redis worker knows of the store, and a transaction run on that knowledge.

A worker keeps a copy of every key it has read (:class:`WorkerCopy`): a document's JSON, a
set's smallest members and size, a counter's value, each with the version Redis gave it. :class:`ScriptTx` reads only that copy, noting
the version of everything it reads, and buffers its writes; :meth:`ScriptTx.request` is what
the commit script (:mod:`gameserver.store.redis_script`) checks and applies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from .base import R, RecordCache, Tx, WriteInRead, record_json, settle_placeholders


@dataclass(slots=True)
class SetView:
    """What a worker knows of a set: its version, size and smallest members (all of them if
    ``complete``)."""

    version: int
    count: int
    first: list[str]
    complete: bool

    def covers(self, want: int) -> bool:
        """Whether it answers a read of the ``want`` smallest members (-1: all)."""
        return self.complete or (want >= 0 and len(self.first) >= want)


EMPTY_SET = SetView(0, 0, [], True)
#: In an undo log: the copy held nothing of the key.
UNKNOWN: Any = object()
#: Where a key of the copy lives, and what it held there, before a batch staged writes to it.
Undo = dict[str, tuple[dict[str, Any], Any]]


#: Keys whose last-read content a worker remembers; beyond this it forgets them all (and
#: learns again what it uses, a round trip per key at worst).
CACHE_LIMIT = 200_000
#: How old a worker's copy of a set may be for a glimpse (Tx.glimpse_members: a room's
#: presence in a description) to be answered from it unchecked. Checked, every move into a
#: crowded room read its presence set, which every other worker's move into or out of that
#: room changes: two workers' moves refused each other, and one worker ended up doing nearly
#: all of them (issue 12's Redis row). A description may miss who came or went in the last
#: quarter second; what a move does never rests on it.
GLIMPSE_STALE_S = 0.25
#: The clock of GLIMPSE_STALE_S (a module attribute, so that tests can move it).
glimpse_clock = time.monotonic


class WorkerCopy:
    """The keys of one game (``tag``) as this worker last saw them, with their versions."""

    def __init__(self, tag: str, event_log_size: int) -> None:
        self.tag = tag
        self.event_log_size = event_log_size
        self.docs: dict[str, tuple[int, bytes | None]] = {}
        self.records = RecordCache()  # validated records, by key and version
        self.sets: dict[str, SetView] = {}
        self.counters: dict[str, int] = {}
        #: When each set's view was last known current (Redis said so): for glimpses.
        self.sets_seen: dict[str, float] = {}

    def forget_if_large(self) -> None:
        if len(self.docs) + len(self.sets) + len(self.counters) > CACHE_LIMIT:
            self.docs.clear()
            self.sets.clear()
            self.counters.clear()
            self.sets_seen.clear()

    def refresh(self, entries: Iterable[list[Any]]) -> None:
        """Take the current content the script sent back (its ``stale`` or ``fresh``)."""
        for entry in entries:
            key, version = entry[0], int(entry[1])
            if len(entry) == 2:
                self.counters[key] = version
            elif len(entry) == 3:
                raw = entry[2]
                self.docs[key] = (version, None if raw is False else raw.encode())
            else:
                members, want = list(entry[3] or []), int(entry[4])
                count = int(entry[2])
                complete = want < 0 or len(members) >= count
                self.sets[key] = SetView(version, count, members, complete)
                self.sets_seen[key] = glimpse_clock()


def restore(undo: Undo) -> None:
    """Put the copy back as it was before the batch's staged writes."""
    for key, (where, held) in undo.items():
        if held is UNKNOWN:
            where.pop(key, None)
        else:
            where[key] = held


class SetOverlay:
    """A transaction's changes to one set, applied over what the worker knows of it."""

    __slots__ = ("added", "delta", "removed")

    def __init__(self) -> None:
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.delta = 0

    def apply(self, view: SetView) -> SetView:
        members = (set(view.first) | self.added) - self.removed
        if not view.complete:  # keep only what is surely among the smallest
            cutoff = view.first[-1] if view.first else ""
            members = {member for member in members if member <= cutoff}
        return SetView(view.version, view.count + self.delta, sorted(members), view.complete)


def _membership(overlay: SetOverlay, view: SetView, member: str) -> bool | None:
    """Whether ``member`` is in the set as this transaction sees it; None: unknown."""
    if member in overlay.added:
        return True
    if member in overlay.removed:
        return False
    if member in view.first:
        return True
    return False if view.complete else None


class ScriptTx(Tx):
    """Reads the worker's copy, noting each version; buffers writes for the script."""

    def __init__(
        self,
        copy: WorkerCopy,
        writable: bool,
        placeholders: Callable[[], int | None] | None = None,
    ) -> None:
        """``placeholders`` hands out reservations' placeholders (a staged transaction's:
        the script gives their values); None, or once it answers None, a reservation is an
        :meth:`incr`."""
        self.writable = writable
        self._copy = copy
        self._placeholders = placeholders
        self._reserved: list[list[Any]] = []  # ["bump", counter key, placeholder]
        self._reads: dict[str, list[Any]] = {}
        self._docs: dict[str, tuple[bytes | None, float | None]] = {}
        self._records: dict[str, BaseModel] = {}  # records written, by key
        self._sets: dict[str, SetOverlay] = {}
        self._set_ops: list[list[Any]] = []
        self._counters: dict[str, int] = {}
        self._events: list[list[Any]] = []

    def _key(self, kind: str, ns: str, key: str) -> str:
        return f"{self._copy.tag}:{kind}:{ns}:{key}"

    def _check_writable(self) -> None:
        if not self.writable:
            raise WriteInRead("a write in a read-only transaction")

    # -- documents --------------------------------------------------------------------------

    def get(self, ns: str, key: str) -> Any | None:
        full = self._key("d", ns, key)
        if full in self._docs:
            raw = self._docs[full][0]
        else:
            version, raw = self._copy.docs.get(full, (0, None))
            self._reads.setdefault(full, [full, "d", version, 0])
        return None if raw is None else orjson.loads(raw)

    def get_record(self, ns: str, key: str, model: type[R]) -> R | None:
        full = self._key("d", ns, key)
        if full in self._docs:
            raw = self._docs[full][0]
            return None if raw is None else model.model_validate_json(raw)
        version, raw = self._copy.docs.get(full, (0, None))
        self._reads.setdefault(full, [full, "d", version, 0])
        if raw is None:
            return None
        # Keyed by version: the record validated (or written) at this version before.
        record = self._copy.records.get(full, version, model)
        if record is None:
            record = model.model_validate_json(raw)
            self._copy.records.put(full, version, record)
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

    def _view(self, ns: str, key: str, want: int) -> tuple[str, SetView]:
        full = self._key("z", ns, key)
        view = self._copy.sets.get(full, EMPTY_SET)
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

    def glimpse_members(self, ns: str, key: str, limit: int) -> tuple[list[str], int]:
        """From the copy, unchecked, when it was current at most GLIMPSE_STALE_S ago and this
        write transaction has not read the set for itself; else a checked read. The copy may
        show a batch's earlier staged writes, which could yet be refused and run again: a
        description may show a move a moment early. A read-only transaction (a `look`)
        always checks: it costs no conflict, only its round trip."""
        full = self._key("z", ns, key)
        view = self._copy.sets.get(full)
        if (
            self.writable
            and view is not None
            and view.covers(limit)
            and full not in self._reads
            and glimpse_clock() - self._copy.sets_seen.get(full, float("-inf")) <= GLIMPSE_STALE_S
        ):
            if full in self._sets:
                view = self._sets[full].apply(view)
            return view.first[:limit], view.count
        return super().glimpse_members(ns, key, limit)

    def add_member(self, ns: str, key: str, member: str) -> None:
        self._check_writable()
        self._change(ns, key, member, adding=True)

    def remove_member(self, ns: str, key: str, member: str) -> None:
        self._check_writable()
        self._change(ns, key, member, adding=False)

    def _change(self, ns: str, key: str, member: str, *, adding: bool) -> None:
        full = self._key("z", ns, key)
        view = self._copy.sets.get(full, EMPTY_SET)
        overlay = self._sets.setdefault(full, SetOverlay())
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
        # With the version known, how much of the set to send back if that version is old.
        want = -1 if view.complete else len(view.first)
        self._set_ops.append(["zadd" if adding else "zrem", full, member, view.version, want])

    # -- counters and logs -------------------------------------------------------------------

    def counter(self, ns: str, key: str) -> int:
        full = self._key("c", ns, key)
        if full in self._counters:
            return self._counters[full]
        value = self._copy.counters.get(full, 0)
        self._reads.setdefault(full, [full, "c", value, 0])
        return value

    def glimpse_counter(self, ns: str, key: str) -> int:
        """From the copy, unchecked, when it has the counter: what this worker last read or
        committed (an event's seq, which is reserved and never staged, is thus never ahead of
        Redis). Another worker's later events leave it behind, and a client that starts there
        fetches those few (a catch-up from the start of a busy room's log would be up to a
        thousand). Without a copy, a checked read."""
        full = self._key("c", ns, key)
        if full in self._counters:
            return self._counters[full]
        value = self._copy.counters.get(full)
        return self.counter(ns, key) if value is None else value

    def incr(self, ns: str, key: str) -> int:
        self._check_writable()
        full = self._key("c", ns, key)
        self._counters[full] = self.counter(ns, key) + 1
        return self._counters[full]

    def reserve(self, ns: str, key: str) -> int:
        """Numbered by the script as it commits, without reading the counter: the worker
        whose copy of an event counter is behind another's commit is not refused for it."""
        placeholder = self._placeholders() if self._placeholders is not None else None
        if placeholder is None:
            return self.incr(ns, key)
        self._check_writable()
        self._reserved.append(["bump", self._key("c", ns, key), placeholder])
        return placeholder

    def log_event(self, topic: str, seq: int, payload: bytes) -> None:
        self._check_writable()
        key = f"{self._copy.tag}:log:{topic}"
        self._events.append(["log", key, seq, payload.decode(), self._copy.event_log_size])

    # -- commit -----------------------------------------------------------------------------

    def discard_writes(self) -> None:
        """Keep only the reads (to check them after a failure)."""
        self._docs.clear()
        self._records.clear()
        self._sets.clear()
        self._set_ops.clear()
        self._counters.clear()
        self._reserved.clear()
        self._events.clear()

    @property
    def empty(self) -> bool:
        return not (self._reads or self.writes)

    @property
    def writes(self) -> bool:
        return bool(self._docs or self._set_ops or self._counters or self._reserved or self._events)

    def read_versions(self) -> dict[str, int]:
        """Each key read, with the version this worker's copy now holds of it."""
        return {key: self._current_version(key, read[1]) for key, read in self._reads.items()}

    def _current_version(self, key: str, kind: str) -> int:
        copy = self._copy
        if kind == "d":
            return copy.docs.get(key, (0, None))[0]
        if kind == "c":
            return copy.counters.get(key, 0)
        return copy.sets.get(key, EMPTY_SET).version

    def read_staged_writes(self) -> bool:
        """True if it read what a batch's earlier transaction staged (at a marker): the
        script never checked those reads against Redis."""
        return any(read[2] <= -2 for read in self._reads.values())

    def read_only_within(self, checked: dict[str, int]) -> bool:
        """True if this transaction wrote nothing and read only keys of ``checked`` at those
        versions (a set's read also covered by the view: -1 never matches)."""
        if self.writes:
            return False
        return all(checked.get(key, -1) == read[2] != -1 for key, read in self._reads.items())

    def request(self, marker: int = 0, part: int = 0) -> bytes:
        """The script's JSON for this transaction; ``marker`` (below -1) and ``part`` for a
        staged one."""
        writes: list[list[Any]] = list(self._reserved)  # first: the rest may show their values
        for key, (raw, ttl) in self._docs.items():
            if raw is None:
                writes.append(["del", key])
            else:
                ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
                writes.append(["put", key, raw.decode(), ttl_ms])
        writes.extend(self._set_ops)
        writes.extend(["set", key, value] for key, value in self._counters.items())
        writes.extend(self._events)
        reads = list(self._reads.values())
        if marker:
            return orjson.dumps({"r": reads, "w": writes, "m": marker, "p": part})
        return orjson.dumps({"r": reads, "w": writes})

    def stage(self, marker: int, undo: Undo) -> None:
        """Show this transaction's writes in the worker's copy at version ``marker`` before
        they are committed, for the batch's later transactions to read; ``undo`` keeps what
        the copy held of each key before the batch's first staged write to it."""
        copy = self._copy

        def keep(where: dict[str, Any], key: str) -> None:
            if key not in undo:
                undo[key] = (where, where.get(key, UNKNOWN))

        for key, (raw, _ttl) in self._docs.items():
            keep(copy.docs, key)
            copy.docs[key] = (marker, raw)
            if key in self._records:
                copy.records.put(key, marker, self._records[key])
        for key, overlay in self._sets.items():
            keep(copy.sets, key)
            view = overlay.apply(copy.sets.get(key, EMPTY_SET))
            view.version = marker
            copy.sets[key] = view
        for key, value in self._counters.items():
            keep(copy.counters, key)
            copy.counters[key] = value

    def committed(self, versions: list[list[Any]], assigned: dict[int, int]) -> None:
        """Remember what this transaction wrote, at the versions the script gave it;
        ``assigned``: its reservations' values (placeholder -> value)."""
        copy = self._copy
        new_versions = {entry[0]: int(entry[1]) for entry in versions}
        # A set written without being read: the copy stays good if it was current before.
        current = {entry[0] for entry in versions if len(entry) > 2 and entry[2]}
        for key, (raw, _ttl) in self._docs.items():
            version = new_versions.get(key, 0)
            if assigned and raw is not None:
                settled = settle_placeholders(raw, assigned)
                if settled != raw:  # as the script wrote it; its record held placeholders
                    copy.docs[key] = (version, settled)
                    continue
            copy.docs[key] = (version, raw)
            if key in self._records:  # never validated again while at this version
                copy.records.put(key, version, self._records[key])
        seen = glimpse_clock()
        for key, overlay in self._sets.items():
            if key not in self._reads and key not in current:
                copy.sets.pop(key, None)
                continue
            view = overlay.apply(copy.sets.get(key, EMPTY_SET))
            view.version = new_versions.get(key, view.version)
            copy.sets[key] = view
            copy.sets_seen[key] = seen
        copy.counters.update(self._counters)
        for _, key, placeholder in self._reserved:
            copy.counters[key] = max(copy.counters.get(key, 0), assigned[placeholder])
        # Every set this transaction read was current when the script applied it.
        for key, read in self._reads.items():
            if read[1] == "z" and key not in self._sets:
                copy.sets_seen[key] = seen
