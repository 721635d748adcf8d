"""Text that several commands and handlers share: room descriptions and English lists."""

from __future__ import annotations

from collections.abc import Sequence

from .store.state import GameState
from .world import DIRECTIONS, World

#: Most player names a room description spells out; the rest are counted ("and 994 others").
NAMES_SHOWN = 30


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
    # Only the sky outdoors shows the time of day: indoors the clock is not read at all.
    if room.outdoors and (clock := state.clock()) is not None:
        lines.append(f"It is {clock.phase}.")
    lines.append(exits_sentence(world, room_id))
    items = [world.items[i].indefinite for i in state.items_in_room(room_id) if i in world.items]
    if items:
        lines.append(f"You see {english_list(items)}.")
    for npc_id in state.npcs_in(room_id):
        if npc_id in world.npcs:
            lines.append(f"{capitalized(world.npcs[npc_id].name)} is here.")
    others = present_others(state, room_id, viewer)
    if others:
        lines.append(others)
    return "\n".join(lines)


def present_others(state: GameState, room_id: str, viewer: str | None) -> str:
    """ "Alice and Bob are here.", naming at most :data:`NAMES_SHOWN` players and counting the
    rest, from the room's presence record: a crowded room costs no more than a quiet one.
    ``viewer`` (a player key) is in the room and left out."""
    names, count = state.present_glimpse(room_id, NAMES_SHOWN + 1)
    if viewer is not None:
        names = [name for name in names if name.lower() != viewer]  # == player_key(name)
        count = max(count - 1, len(names))
    names = names[:NAMES_SHOWN]
    if not names:
        return ""
    if count > len(names):
        rest = count - len(names)
        names.append(f"{rest:,} other{'s' if rest > 1 else ''}")
    verb = "is" if count == 1 else "are"
    return f"{english_list(names)} {verb} here."


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]
