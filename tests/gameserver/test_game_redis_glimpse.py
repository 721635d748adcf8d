"""Who is in a room, read for a description, does not make a Redis transaction depend on the
room's presence set while the worker's copy of it is at most GLIMPSE_STALE_S old (issue 12:
checked, every move into a crowded room read that set, which every other worker's move
changes, and two workers' moves refused each other). Older than that, or in a read-only
transaction, the read is checked as any other. The SQLite store is exact either way."""

from __future__ import annotations

import orjson
import pytest
from gamekit import FAST_PASSWORDS, FakeClock, Game

from gameserver.seed import seed_world
from gameserver.service import GameService
from gameserver.store import redis_tx
from gameserver.store.redis_backend import RedisStore
from gameserver.store.redis_tx import GLIMPSE_STALE_S, ScriptTx, SetView, WorkerCopy
from gameserver.world import World

KEY = "t:z:present:hall"


class Clock:
    """What redis_tx reads for GLIMPSE_STALE_S, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def glimpse_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(redis_tx, "glimpse_clock", clock)
    return clock


def _copy(clock: Clock, seen_ago: float) -> WorkerCopy:
    copy = WorkerCopy("t", 100)
    copy.sets[KEY] = SetView(7, 3, ["Alice", "Bob", "Carol"], True)
    copy.sets_seen[KEY] = clock.now - seen_ago
    return copy


def _reads(tx: ScriptTx) -> list[str]:
    return [read[0] for read in orjson.loads(tx.request())["r"]]


def test_a_fresh_copy_answers_a_glimpse_unchecked(glimpse_clock: Clock) -> None:
    tx = ScriptTx(_copy(glimpse_clock, GLIMPSE_STALE_S / 2), writable=True)
    tx.add_member("present", "hall", "Dave")  # the transaction's own move shows
    assert tx.glimpse_members("present", "hall", 10) == (["Alice", "Bob", "Carol", "Dave"], 4)
    assert KEY not in _reads(tx)


@pytest.mark.parametrize(
    ("seen_ago", "writable"),
    [(GLIMPSE_STALE_S * 2, True), (0.0, False)],
    ids=["an old copy", "a read-only transaction"],
)
def test_otherwise_a_glimpse_is_a_checked_read(
    glimpse_clock: Clock, seen_ago: float, writable: bool
) -> None:
    tx = ScriptTx(_copy(glimpse_clock, seen_ago), writable=writable)
    assert tx.glimpse_members("present", "hall", 10) == (["Alice", "Bob", "Carol"], 3)
    assert KEY in _reads(tx)


def test_where_a_log_stands_is_glimpsed_from_the_copy_unchecked(glimpse_clock: Clock) -> None:
    """A move into a crowded room says where the room's log stands (rules.py): from the
    copy, with no read recorded, so the move is not refused for another worker's event
    there; a counter the copy lacks is read checked, as any other."""
    copy = WorkerCopy("t", 100)
    copy.counters["t:c:seq:room.hall"] = 41
    tx = ScriptTx(copy, writable=True)
    assert tx.glimpse_counter("seq", "room.hall") == 41
    assert "t:c:seq:room.hall" not in _reads(tx)
    assert tx.glimpse_counter("seq", "room.yard") == 0
    assert "t:c:seq:room.yard" in _reads(tx)


def test_a_description_lags_by_at_most_the_bound(
    counted_stores: list[RedisStore], world: World, clock: FakeClock, glimpse_clock: Clock
) -> None:
    """Two workers on a real redis-server. Bob's worker last saw who is north a moment ago;
    Alice then goes north through the other worker. Within GLIMPSE_STALE_S Bob's arrival
    there may not name her; past it, his worker checks, and it does. Either way the moves
    themselves are exact: both stand, and a look (checked) names her."""
    seed_world(counted_stores[0], world)
    first, second = (
        GameService(s, world, passwords=FAST_PASSWORDS, clock=clock) for s in counted_stores
    )
    game = Game(first)
    alice, bob = game.login("Alice"), game.login("Bob")
    for attempt in ("soon", "late"):
        game.service = second
        bob.say_ok("n")  # Bob's worker sees who is north (its copy is current now)
        bob.say_ok("s")
        game.service = first
        alice.say_ok("n")
        glimpse_clock.now += GLIMPSE_STALE_S / 2 if attempt == "soon" else GLIMPSE_STALE_S * 2
        game.service = second
        arrival = bob.say_ok("n")
        if attempt == "late":
            assert "Alice" in arrival
        assert "Alice" in bob.say_ok("look")
        game.service = first
        alice.say_ok("s")
        bob.say_ok("s")
