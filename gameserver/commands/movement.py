"""Walking between rooms: ``go <direction>`` and one command per direction (``north``, ``n``...)."""

from __future__ import annotations

from typing import ClassVar

from ..narration import describe_room, exits_sentence
from ..presence import comings_and_goings
from ..world import DIRECTIONS, OPPOSITE
from .base import Command, CommandError
from .context import Context

_BY_SHORT = {short: full for full, short in DIRECTIONS.items()}


def normalize_direction(word: str) -> str | None:
    word = word.strip().lower()
    if word in DIRECTIONS:
        return word
    return _BY_SHORT.get(word)


def _arrival_phrase(back_direction: str | None) -> str:
    if back_direction is None:
        return ""
    if back_direction == "down":
        return " from below"
    if back_direction == "up":
        return " from above"
    return f" from the {back_direction}"


def walk(ctx: Context, direction: str) -> None:
    """Move the acting player through an exit and tell both rooms (unless crowded)."""
    origin = ctx.player.room
    target = ctx.room.exits.get(direction)
    if target is None:
        raise CommandError(
            f"You can't go {direction} from here. {exits_sentence(ctx.world, origin)}"
        )
    exits_back = ctx.world.room(target).exits
    # Prefer the matching opposite exit, but one-way or bent paths still name a way back.
    back = OPPOSITE[direction] if exits_back.get(OPPOSITE[direction]) == origin else None
    back = back or next((d for d, room in exits_back.items() if room == origin), None)
    name = ctx.player.name
    ctx.update_player(room=target)
    left = f"{name} leaves {direction}."
    ctx.add_events(comings_and_goings(ctx.state, origin, "depart", left, name, direction=direction))
    came = f"{name} arrives{_arrival_phrase(back)}."
    ctx.add_events(comings_and_goings(ctx.state, target, "arrive", came, name, direction=back))
    ctx.reply(describe_room(ctx.state, ctx.world, target, ctx.player.key))


class Go(Command):
    """Walk through an exit (or just type the direction: n, s, ne, up...).

    Usage: go <direction>
    Directions: north, south, east, west, northeast, northwest, southeast, southwest, up, down.
    You can also type just the direction or its short form: n, s, e, w, ne, nw, se, sw, u, d.
    """

    key = "go"
    aliases = ("walk",)
    category = "Moving"

    def func(self, ctx: Context) -> None:
        if not self.args:
            raise CommandError(f"Go where? {exits_sentence(ctx.world, ctx.player.room)}")
        direction = normalize_direction(self.args)
        if direction is None:
            raise CommandError(f"'{self.args}' is not a direction. Try north, ne, up...")
        walk(ctx, direction)


class DirectionCommand(Command):
    """Walk one way; subclasses are made per direction below."""

    direction: ClassVar[str] = ""
    category = "Moving"
    listed = False

    def func(self, ctx: Context) -> None:
        walk(ctx, self.direction)


def _make_direction_command(direction: str, short: str) -> type[Command]:
    doc = f"""Walk {direction}, if there is an exit that way.

    Usage: {direction} (or {short})
    """
    attributes = {"key": direction, "aliases": (short,), "direction": direction, "__doc__": doc}
    return type(f"Go{direction.title()}", (DirectionCommand,), attributes)


DIRECTION_COMMANDS: tuple[type[Command], ...] = tuple(
    _make_direction_command(direction, short) for direction, short in DIRECTIONS.items()
)
MOVEMENT_COMMANDS: tuple[type[Command], ...] = (Go, *DIRECTION_COMMANDS)
