"""The world moving on its own: clock phases, NPCs, idle sessions."""

from __future__ import annotations

from gamekit import FakeClock, Game

from gameserver.service import GameService
from gameserver.store import Store
from gameserver.store.state import GameState
from gameserver.topics import WORLD_TOPIC, room_topic
from gameserver.world import World


def turn_start(world: World, turn: int) -> float:
    return turn * world.clock.tick_seconds


def aligned_turn(clock: FakeClock, world: World, multiple: int) -> int:
    """The first turn from now on that is a multiple of ``multiple``."""
    turn = int(clock.now // world.clock.tick_seconds) + 1
    return -(-turn // multiple) * multiple


def npc_room(store: Store, npc_id: str) -> str:
    record = store.transaction(lambda tx: GameState(tx).npc(npc_id))
    assert record is not None
    return record.room


def test_tick_is_idempotent_per_turn(service: GameService, clock: FakeClock, world: World) -> None:
    clock.now = turn_start(world, aligned_turn(clock, world, 1)) + 1
    service.tick()
    assert service.tick() == []  # same turn again: already done
    clock.now += world.clock.tick_seconds / 2
    assert service.tick() == []  # still the same turn


def test_pedlar_walks_his_route(
    game: Game, service: GameService, store: Store, clock: FakeClock, world: World
) -> None:
    pedlar = world.npcs["pedlar"]
    alice = game.login("Alice")
    assert npc_room(store, "pedlar") == "crossroads"
    visited = []
    turn = aligned_turn(clock, world, pedlar.move_every)
    for _ in range(len(pedlar.route)):
        clock.now = turn_start(world, turn)
        events = service.tick()
        game.deliver(events)
        visited.append(npc_room(store, "pedlar"))
        turn += pedlar.move_every
    assert visited == pedlar.route[1:] + pedlar.route[:1]
    assert "Tobin the pedlar leaves north." in alice.heard("npc_depart")
    assert "Tobin the pedlar arrives." in alice.heard("npc_arrive")
    assert all(e.topic == room_topic("crossroads") for e in alice.inbox if e.kind.startswith("npc"))


def test_cat_roams_only_its_rooms(
    service: GameService, store: Store, clock: FakeClock, world: World
) -> None:
    cat = world.npcs["cat"]
    seen = set()
    first = aligned_turn(clock, world, cat.move_every)
    for n in range(40):
        clock.now = turn_start(world, first + n * cat.move_every)
        service.tick()
        seen.add(npc_room(store, "cat"))
    assert seen <= set(cat.roam)
    assert len(seen) > 1


def test_npcs_talk_to_players_nearby(
    game: Game, service: GameService, clock: FakeClock, world: World
) -> None:
    agnes = world.npcs["agnes"]
    alice = game.login("Alice")
    for direction in ("w", "w"):
        alice.say_ok(direction)
    assert alice.room == "chapel"
    clock.now = turn_start(world, aligned_turn(clock, world, agnes.talk_every))
    game.deliver(service.tick())
    said = alice.heard("npc_say")
    assert len(said) == 1 and said[0].startswith('Sister Agnes says, "')


def test_time_of_day_changes(
    game: Game, service: GameService, clock: FakeClock, world: World
) -> None:
    phases = world.clock.phases
    per_phase = world.clock.ticks_per_phase
    base = aligned_turn(clock, world, len(phases) * per_phase)  # the first phase begins
    clock.now = turn_start(world, base + per_phase - 1)
    service.tick()
    alice = game.login("Alice")
    clock.now = turn_start(world, base + per_phase)
    events = service.tick()
    game.deliver(events)
    clock_events = [e for e in events if e.kind == "clock"]
    assert [e.topic for e in clock_events] == [WORLD_TOPIC]
    assert clock_events[0].data["phase"] == phases[1].name
    assert phases[1].message in alice.heard("clock")
    assert f"It is {phases[1].name}." in alice.say_ok("look")


def test_idle_players_are_taken_out(game: Game, service: GameService, clock: FakeClock) -> None:
    alice = game.login("Alice")
    bob = game.login("Bob")
    clock.advance(service.session_ttl / 2)
    bob.say_ok("look")  # activity keeps Bob's session alive
    clock.advance(service.session_ttl / 2 + 1)
    game.deliver(service.tick())
    assert "Alice dozes off and fades away." in bob.heard("depart")
    assert bob.say_ok("who") == "1 player(s) online: Bob (The Crossroads)."
    assert alice.act("look").reply.type == "error"
