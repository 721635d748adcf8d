"""The Redis backend's round trips per action, counted on the wire to a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from gamekit import FAST_PASSWORDS, FakeClock, Game, Player, RedisServer, empty_store_url

from gameserver.protocol import Reply
from gameserver.seed import seed_world
from gameserver.service import GameService
from gameserver.store.redis_backend import RedisStore
from gameserver.world import World

#: The benchmark's mix of actions, over two rooms so that every room is known once warm.
MIX = ("look", "say hi", "n", "look", "s", "take lamp", "drop lamp", "inventory", "say bye", "look")


class CountingConnection(redis.Connection):
    """A real connection that counts the requests it sends (each is one round trip)."""

    sent = 0

    def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def counted_stores(redis_server: RedisServer, tmp_path: object) -> Iterator[list[RedisStore]]:
    url = empty_store_url("redis", tmp_path, redis_server)
    stores = []
    for _ in range(2):  # two workers, each with its own connection and its own copy
        pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection)
        stores.append(RedisStore(url, client=redis.Redis(connection_pool=pool)))
    yield stores
    for store in stores:
        store.close()


def trips(player: Player, text: str) -> int:
    """Round trips for one action; a refusal is marked negative (it may take two: the
    refused attempt's reads are checked, then the refusal is recorded)."""
    before = CountingConnection.sent
    reply = player.act(text).reply
    assert isinstance(reply, Reply), (text, reply)
    count = CountingConnection.sent - before
    return count if reply.ok else -count


def test_one_worker_makes_one_round_trip_per_action(
    counted_stores: list[RedisStore], world: World, clock: FakeClock
) -> None:
    store = counted_stores[0]
    seed_world(store, world)
    game = Game(GameService(store, world, passwords=FAST_PASSWORDS, clock=clock))
    alice, bob = game.login("Alice"), game.login("Bob")
    for text in MIX:  # warm: the worker learns the keys these actions use
        trips(alice, text), trips(bob, text)
    counts = [trips(player, text) for text in MIX for player in (alice, bob)]
    accepted = [count for count in counts if count > 0]
    refused = [-count for count in counts if count < 0]
    assert accepted == [1] * len(accepted), counts
    assert refused and max(refused) <= 2, counts  # Bob can neither take nor drop the lamp


def test_two_workers_average_at_most_two_round_trips_per_action(
    counted_stores: list[RedisStore], world: World, clock: FakeClock
) -> None:
    seed_world(counted_stores[0], world)
    services = [
        GameService(s, world, passwords=FAST_PASSWORDS, clock=clock) for s in counted_stores
    ]
    game = Game(services[0])
    alice, bob = game.login("Alice"), game.login("Bob")
    counts = []
    for round_ in range(3):  # strict turns: each action goes to the other worker
        for i, text in enumerate(MIX):
            for j, player in enumerate((alice, bob)):
                game.service = services[(i + j) % 2]
                count = abs(trips(player, text))
                if round_:  # after a warm-up round
                    counts.append(count)
    # Each worker finds what the other changed since it last looked (the player moved, the
    # room's seq moved on) stale: one more trip, sometimes two when the fresh data leads to
    # keys that changed too. Strict alternation is the worst case for that.
    assert sum(counts) / len(counts) <= 2.0, counts
    assert max(counts) <= 4, counts
