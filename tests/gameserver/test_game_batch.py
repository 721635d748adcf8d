"""Store batches: several transactions, one commit; each still succeeds or fails on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gameserver.store import Store, StoreError, Tx, open_store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """For what only SQLite does: a batch that holds the write lock and commits once at its
    end. (Redis stages a batch's parts and refuses the stale ones:
    test_game_redis_batches.py.)"""
    with open_store(f"sqlite:///{tmp_path}/game.db") as opened:
        yield opened


class Refused(Exception):
    pass


def put(key: str, fail: bool = False):  # type: ignore[no-untyped-def]
    def write(tx: Tx) -> None:
        tx.put("doc", key, {"v": key})
        tx.add_member("set", "s", key)
        if fail:
            raise Refused

    return write


def test_a_failed_transaction_in_a_batch_undoes_only_itself(store: Store) -> None:
    with store.batch():
        store.transaction(put("a"))
        with pytest.raises(Refused):
            store.transaction(put("b", fail=True))
        store.transaction(put("c"))
        # Reads inside the batch see its own writes.
        assert store.read(lambda tx: tx.get("doc", "a")) == {"v": "a"}
    assert store.read(lambda tx: sorted(tx.members("set", "s"))) == ["a", "c"]
    assert store.read(lambda tx: tx.get("doc", "b")) is None
    assert store.read(lambda tx: tx.member_count("set", "s")) == 2


def test_sqlite_batch_is_one_commit_seen_by_others_only_at_its_end(sqlite_store: Store) -> None:
    store = sqlite_store
    with open_store(store.url) as other:
        with store.batch():
            store.transaction(put("a"))
            store.transaction(put("b"))
            assert other.read(lambda tx: tx.get("doc", "a")) is None  # not committed yet
        assert other.read(lambda tx: tx.member_count("set", "s")) == 2


def test_an_error_escaping_a_sqlite_batch_rolls_all_of_it_back(sqlite_store: Store) -> None:
    store = sqlite_store
    with pytest.raises(StoreError), store.batch():
        store.transaction(put("a"))
        raise StoreError("the worker gave up")
    assert store.read(lambda tx: tx.get("doc", "a")) is None
    store.transaction(put("z"))  # the store is usable afterwards
    assert store.read(lambda tx: tx.get("doc", "z")) == {"v": "z"}


def test_a_record_written_is_not_validated_again_until_it_changes(store: Store) -> None:
    from gameserver.store.records import PlayerRecord
    from gameserver.store.state import GameState

    ann = PlayerRecord(key="ann", name="Ann", room="crossroads")
    store.transaction(lambda tx: GameState(tx).put_player(ann))
    # The very object written comes back: the worker trusts what it wrote itself.
    assert store.read(lambda tx: GameState(tx).player("ann")) is ann
    with open_store(store.url) as other:  # another worker moves her
        other.transaction(
            lambda tx: GameState(tx).put_player(ann.model_copy(update={"room": "meadow"}))
        )
    fresh = store.read(lambda tx: GameState(tx).player("ann"))
    assert fresh is not ann and fresh is not None and fresh.room == "meadow"
    assert store.read(lambda tx: GameState(tx).player("ann")) is fresh  # validated once


def test_reads_of_a_sqlite_batch_share_one_read_transaction_that_ends_before_its_writes(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    from gameserver.store.base import WriteInRead

    store.transaction(put("a"))
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    with open_store(store.url) as other, store.batch():
        assert store.read(lambda tx: tx.get("doc", "a")) == {"v": "a"}
        other.transaction(put("b"))  # committed meanwhile: this batch's snapshot is older
        assert store.read(lambda tx: tx.get("doc", "b")) is None
        with pytest.raises(WriteInRead):  # a read-only job that needed a write after all
            store.read(put("c"))
        store.transaction(put("c"))  # ...runs as a write: the read transaction ends first
        assert store.read(lambda tx: tx.get("doc", "b")) == {"v": "b"}
    store._conn.set_trace_callback(None)  # type: ignore[attr-defined]
    assert [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT")] == [
        "BEGIN",
        "COMMIT",
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    assert store.read(lambda tx: sorted(tx.members("set", "s"))) == ["a", "b", "c"]
