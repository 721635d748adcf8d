"""Exactly-once actions: a retried action id is answered from the store, never re-applied."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from gamekit import Game

from gameserver.protocol import ErrorReply, Reply
from gameserver.rules import execute
from gameserver.store import Store, Tx
from gameserver.store.state import GameState
from gameserver.world import World

T = TypeVar("T")


class WorkerCrash(Exception):
    """Stands in for a worker process dying at an awkward moment."""


class CrashingStore(Store):
    """A real store whose next transaction 'crashes' just before or just after committing."""

    def __init__(self, inner: Store, when: str) -> None:
        super().__init__(inner.url, inner.event_log_size)
        self.inner = inner
        self.when = when

    def transaction(self, fn: Callable[[Tx], T]) -> T:
        if self.when == "before_commit":

            def crash(tx: Tx) -> T:
                fn(tx)
                raise WorkerCrash

            return self.inner.transaction(crash)
        self.inner.transaction(fn)
        raise WorkerCrash

    def events_since(self, topic: str, since_seq: int) -> list[bytes]:
        return self.inner.events_since(topic, since_seq)

    def purge_expired(self) -> int:
        return self.inner.purge_expired()

    def close(self) -> None:
        self.inner.close()


def lamp_location(store: Store) -> str | None:
    return store.transaction(lambda tx: GameState(tx).item_location("lamp"))


def room_seq(store: Store) -> int:
    return store.transaction(lambda tx: GameState(tx).last_seq("room.crossroads"))


def test_same_action_id_applies_once(game: Game, store: Store) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    first = alice.act("take lamp", action_id="take-1")
    seq_after_first = room_seq(store)
    again = alice.act("take lamp", action_id="take-1")
    assert again.replayed and not first.replayed
    assert again.reply == first.reply
    assert again.events == first.events  # same seqs: subscribers drop the duplicates
    assert room_seq(store) == seq_after_first
    assert lamp_location(store) == "player:alice"
    assert bob.heard("take").count("Alice takes the brass lamp.") == 2  # published twice...
    assert len({(e.topic, e.seq) for e in bob.inbox if e.kind == "take"}) == 1  # ...one event


def test_a_refusal_is_remembered_too(game: Game, store: Store) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    bob.say_ok("take lamp")
    refused = alice.act("take lamp", action_id="a-7")
    assert isinstance(refused.reply, Reply) and not refused.reply.ok
    bob.say_ok("drop lamp")
    retried = alice.act("take lamp", action_id="a-7")
    assert retried.reply == refused.reply and retried.replayed
    assert lamp_location(store) == "room:crossroads"


def test_reusing_an_id_for_another_command_is_a_conflict(game: Game) -> None:
    alice = game.login("Alice")
    alice.act("say one", action_id="dup")
    reply = alice.act("say two", action_id="dup").reply
    assert isinstance(reply, ErrorReply) and reply.code == "conflict"
    assert alice.heard("say") == ['Alice says, "one"']


def test_action_ids_belong_to_their_player(game: Game) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    assert not alice.act("say from alice", action_id="1").replayed
    assert not bob.act("say from bob", action_id="1").replayed
    assert alice.heard("say") == ['Alice says, "from alice"', 'Bob says, "from bob"']


@pytest.mark.parametrize("when", ["before_commit", "after_commit"])
def test_retry_after_a_worker_crash(game: Game, store: Store, world: World, when: str) -> None:
    alice = game.login("Alice")
    seq_before = room_seq(store)
    with pytest.raises(WorkerCrash):
        execute(CrashingStore(store, when), world, alice.token, "take-1", "take lamp")
    expected = "room:crossroads" if when == "before_commit" else "player:alice"
    assert lamp_location(store) == expected  # the crash lost the effect, or committed it whole
    retry = execute(store, world, alice.token, "take-1", "take lamp")
    assert isinstance(retry.reply, Reply) and retry.reply.ok
    assert retry.replayed is (when == "after_commit")
    assert lamp_location(store) == "player:alice"
    assert room_seq(store) == seq_before + 1  # exactly one "take" event, whatever happened
