"""World files: the packaged default, and clear errors naming the bad entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gameserver.world import DIRECTIONS, WorldError, load_world

SMALL_WORLD = """
[world]
name = "Tiny"
start_room = "hall"

[rooms.hall]
name = "Hall"
description = "A hall."
exits = { north = "yard" }

[rooms.yard]
name = "Yard"
description = "A yard."
exits = { south = "hall" }

[items.cup]
name = "cup"
description = "A cup."
room = "hall"

[npcs.dog]
name = "a dog"
description = "A dog."
room = "hall"
route = ["hall", "yard"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "world.toml"
    path.write_text(text)
    return path


def test_default_world_is_rich_enough() -> None:
    world = load_world()
    assert world.start_room == "crossroads"
    assert len(world.rooms) >= 20
    assert len(world.npcs) >= 2
    assert any(npc.route or npc.roam for npc in world.npcs.values())
    used = {direction for room in world.rooms.values() for direction in room.exits}
    assert {"northeast", "northwest", "southeast", "southwest", "up", "down"} <= used
    assert set(world.room("crossroads").exits) >= {"north", "south", "east", "west"}
    assert any(item.takeable for item in world.items.values())
    assert any(not item.takeable for item in world.items.values())


def test_default_world_exits_lead_back() -> None:
    world = load_world()
    for room in world.rooms.values():
        for target in room.exits.values():
            assert room.id in world.room(target).exits.values(), f"{room.id} -> {target} is one-way"


def test_small_world_loads_from_a_path(tmp_path: Path) -> None:
    world = load_world(write(tmp_path, SMALL_WORLD))
    assert world.room("hall").exits == {"north": "yard"}
    assert world.items["cup"].id == "cup"
    assert world.npcs["dog"].route == ["hall", "yard"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'exits = { north = "yard" }',
            'exits = { north = "nowhere" }',
            'rooms.hall.exits.north -> "nowhere": no such room',
        ),
        (
            'exits = { north = "yard" }',
            'exits = { upwards = "yard" }',
            "rooms.hall.exits.upwards: not a direction",
        ),
        (
            'start_room = "hall"',
            'start_room = "lobby"',
            'world.start_room -> "lobby": no such room',
        ),
        (
            'room = "hall"\n\n[npcs',
            'room = "attic"\n\n[npcs',
            'items.cup.room -> "attic": no such room',
        ),
        (
            'route = ["hall", "yard"]',
            'route = ["hall", "moon"]',
            'npcs.dog.route[1] -> "moon": no such room',
        ),
        ('name = "Hall"\n', "", "rooms.hall.name: Field required"),
        (
            'name = "cup"',
            'name = "cup"\ncolour = "red"',
            "items.cup.colour: Extra inputs are not permitted",
        ),
        ("[rooms.yard]", "[rooms.Yard]", "rooms.Yard: invalid id"),
    ],
)
def test_invalid_world_names_the_entry(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in SMALL_WORLD
    path = write(tmp_path, SMALL_WORLD.replace(old, new, 1))
    with pytest.raises(WorldError) as caught:
        load_world(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_npc_route_must_follow_exits(tmp_path: Path) -> None:
    text = SMALL_WORLD.replace('exits = { south = "hall" }', "exits = {}")
    with pytest.raises(
        WorldError, match=re.escape('npcs.dog.route[1] "yard" -> "hall": no exit connects them')
    ):
        load_world(write(tmp_path, text))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = SMALL_WORLD.replace('north = "yard"', 'north = "a", west = "b"')
    with pytest.raises(WorldError) as caught:
        load_world(write(tmp_path, text))
    assert 'exits.north -> "a"' in str(caught.value)
    assert 'exits.west -> "b"' in str(caught.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(WorldError, match="cannot read"):
        load_world(tmp_path / "missing.toml")
    with pytest.raises(WorldError, match="not valid TOML"):
        load_world(write(tmp_path, "[rooms.hall\nname ="))


def test_directions_have_opposites() -> None:
    from gameserver.world import OPPOSITE

    assert set(OPPOSITE) == set(DIRECTIONS)
    assert all(OPPOSITE[OPPOSITE[d]] == d for d in DIRECTIONS)
