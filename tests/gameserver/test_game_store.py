"""The store contract, run against both real backends; persistence across a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import redis
from gamekit import FAST_PASSWORDS, FakeClock, Game, RedisServer

from gameserver.protocol import LoginReply, LoginRequest, Reply
from gameserver.seed import seed_world
from gameserver.service import GameService
from gameserver.store import Store, StoreError, Tx, open_store
from gameserver.store.redis_backend import RedisStore
from gameserver.store.state import GameState
from gameserver.world import World, parse_world


def test_documents_sets_and_counters(store: Store) -> None:
    def write(tx: Tx) -> None:
        tx.put("doc", "a", {"x": [1, 2], "y": "z"})
        assert tx.get("doc", "a") == {"x": [1, 2], "y": "z"}  # reads see own writes
        tx.add_member("set", "s", "one")
        tx.add_member("set", "s", "two")
        tx.remove_member("set", "s", "one")
        assert tx.members("set", "s") == {"two"}
        assert tx.incr("count", "c") == 1
        assert tx.incr("count", "c") == 2

    store.transaction(write)

    def read(tx: Tx) -> tuple[object, ...]:
        return (
            tx.get("doc", "a"),
            tx.get("doc", "b"),
            tx.members("set", "s"),
            tx.counter("count", "c"),
        )

    assert store.transaction(read) == ({"x": [1, 2], "y": "z"}, None, {"two"}, 2)
    store.transaction(lambda tx: tx.delete("doc", "a"))
    assert store.transaction(lambda tx: tx.get("doc", "a")) is None


def test_failed_transaction_changes_nothing(store: Store) -> None:
    class Boom(Exception):
        pass

    def fail(tx: Tx) -> None:
        tx.put("doc", "a", 1)
        tx.add_member("set", "s", "m")
        tx.incr("count", "c")
        tx.log_event("world", 1, b"{}")
        raise Boom

    with pytest.raises(Boom):
        store.transaction(fail)
    assert store.transaction(
        lambda tx: (tx.get("doc", "a"), tx.members("set", "s"), tx.counter("count", "c"))
    ) == (
        None,
        set(),
        0,
    )
    assert store.events_since("world", 0) == []


def test_event_log_is_bounded_and_ordered(store_url: str) -> None:
    with open_store(store_url, event_log_size=5) as store:
        for seq in range(1, 13):
            store.transaction(
                lambda tx, seq=seq: tx.log_event("room.hall", seq, f"e{seq}".encode())
            )
        assert store.events_since("room.hall", 0) == [f"e{n}".encode() for n in range(8, 13)]
        assert store.events_since("room.hall", 10) == [b"e11", b"e12"]
        assert store.events_since("room.other", 0) == []


def test_state_survives_reopening(store_url: str) -> None:
    with open_store(store_url) as store:
        store.transaction(lambda tx: (tx.put("doc", "k", {"v": 1}), tx.incr("count", "c")))
    with open_store(store_url) as reopened:
        assert reopened.transaction(lambda tx: (tx.get("doc", "k"), tx.counter("count", "c"))) == (
            {"v": 1},
            1,
        )


def test_game_survives_restart(store_url: str, world: World, clock: FakeClock) -> None:
    with open_store(store_url) as store:
        assert seed_world(store, world) is True
        game = Game(GameService(store, world, passwords=FAST_PASSWORDS, clock=clock))
        alice = game.login("Alice", "open sesame")
        alice.say_ok("take lamp")
        alice.say_ok("north")
    with open_store(store_url) as store:
        assert seed_world(store, world) is False  # already seeded: nothing is reset
        service = GameService(store, world, passwords=FAST_PASSWORDS, clock=clock)
        wrong = service.handle(LoginRequest(name="alice", password="open sesame!"))
        assert wrong.reply.type == "error" and wrong.reply.code == "bad_credentials"
        game = Game(service)
        alice = game.login("alice", "open sesame")
        assert alice.name == "Alice" and alice.room == "north_road"
        assert "brass lamp" in alice.say_ok("inventory")


def test_reseeding_a_changed_world_keeps_play_state(
    store: Store, world: World, clock: FakeClock
) -> None:
    seed_world(store, world)
    game = Game(GameService(store, world, passwords=FAST_PASSWORDS, clock=clock))
    game.login("Alice").say_ok("take lamp")
    data = world.model_dump(
        exclude={
            "rooms": {"__all__": {"id"}},
            "items": {"__all__": {"id"}},
            "npcs": {"__all__": {"id"}},
        }
    )
    data["items"]["pebble"] = {"name": "pebble", "description": "Smooth.", "room": "meadow"}
    bigger = parse_world(data)
    assert seed_world(store, bigger) is True

    def locations(tx: Tx) -> tuple[str | None, str | None]:
        state = GameState(tx)
        return state.item_location("lamp"), state.item_location("pebble")

    assert store.transaction(locations) == ("player:alice", "room:meadow")


def test_unknown_store_url() -> None:
    with pytest.raises(StoreError, match="unknown store URL scheme 'mongodb'"):
        open_store("mongodb://localhost")
    with pytest.raises(StoreError, match="needs a path"):
        open_store("sqlite:///")


def test_sqlite_is_wal_and_keeps_no_plain_tokens(
    tmp_path: Path, world: World, clock: FakeClock
) -> None:
    path = tmp_path / "game.db"
    with open_store(f"sqlite:///{path}") as store:
        seed_world(store, world)
        service = GameService(store, world, passwords=FAST_PASSWORDS, clock=clock)
        reply = service.handle(LoginRequest(name="Alice", password="open sesame")).reply
        assert isinstance(reply, LoginReply)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        dump = "\n".join(conn.iterdump())
    assert reply.token not in dump
    assert "open sesame" not in dump


def test_redis_conflicting_writer_forces_a_retry(redis_server: RedisServer) -> None:
    url = redis_server.url()
    redis.Redis.from_url(url).flushdb()
    with RedisStore(url) as store, RedisStore(url) as rival:
        calls = 0

        def increment(tx: Tx) -> int:
            nonlocal calls
            calls += 1
            value = tx.counter("count", "c")
            if calls == 1:  # another worker commits between our read and our commit
                rival.transaction(lambda other: other.incr("count", "c"))
            tx.put("doc", "seen", value)
            return tx.incr("count", "c")

        assert store.transaction(increment) == 2
        assert calls == 2
        assert store.transaction(lambda tx: (tx.counter("count", "c"), tx.get("doc", "seen"))) == (
            2,
            1,
        )


def test_redis_prefix_separates_games(redis_server: RedisServer) -> None:
    url = redis_server.url()
    with open_store(f"{url}?prefix=one:") as one, open_store(f"{url}?prefix=two:") as two:
        one.transaction(lambda tx: tx.put("doc", "k", 1))
        assert two.transaction(lambda tx: tx.get("doc", "k")) is None
        assert one.transaction(lambda tx: tx.get("doc", "k")) == 1


def test_login_reply_shape(service: GameService) -> None:
    reply = service.handle(LoginRequest(name="Zed", password="zzzz")).reply
    assert isinstance(reply, LoginReply)
    assert reply.created is True
    assert reply.topics == ["world", "room.crossroads", reply.private_topic]
    again = service.handle(LoginRequest(name="zed", password="zzzz")).reply
    assert isinstance(again, LoginReply) and again.created is False and again.player == "Zed"
    assert not isinstance(again, Reply)


def test_service_open_seeds_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    service = GameService.open(url)
    try:
        assert service.world.start_room == "crossroads"
        assert service.store.transaction(lambda tx: GameState(tx).item_location("lamp")) == (
            "room:crossroads"
        )
        assert seed_world(service.store, service.world) is False
    finally:
        service.close()
