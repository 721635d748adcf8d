"""Text that several commands and handlers share: room descriptions and English lists."""

from __future__ import annotations

from collections.abc import Sequence

from .store.state import GameState
from .world import DIRECTIONS, World


def english_list(words: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def exits_sentence(world: World, room_id: str) -> str:
    exits = world.room(room_id).exits
    ordered = [direction for direction in DIRECTIONS if direction in exits]
    return f"Exits: {', '.join(ordered)}." if ordered else "There are no obvious exits."


def describe_room(state: GameState, world: World, room_id: str, viewer: str | None) -> str:
    """What a player sees on entering or looking: everything present except themselves."""
    room = world.room(room_id)
    lines = [room.name, room.description]
    clock = state.clock()
    if room.outdoors and clock is not None:
        lines.append(f"It is {clock.phase}.")
    lines.append(exits_sentence(world, room_id))
    items = [world.items[i].indefinite for i in state.items_in_room(room_id) if i in world.items]
    if items:
        lines.append(f"You see {english_list(items)}.")
    for npc_id in state.npcs_in(room_id):
        if npc_id in world.npcs:
            lines.append(f"{capitalized(world.npcs[npc_id].name)} is here.")
    others = []
    for key in state.players_in(room_id):
        player = state.player(key)
        if key != viewer and player is not None:
            others.append(player.name)
    if others:
        verb = "is" if len(others) == 1 else "are"
        lines.append(f"{english_list(others)} {verb} here.")
    return "\n".join(lines)


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]
