"""Handling things: take, drop, give."""

from __future__ import annotations

import re

from ..store.records import player_location, room_location
from .base import Command, CommandError
from .context import Context
from .matching import find_item, find_other_player

MAX_CARRIED = 12
_GIVE_SYNTAX = re.compile(r"^(?P<item>.+?)\s+to\s+(?P<player>\S+)$", re.IGNORECASE)


class Take(Command):
    """Pick something up.

    Usage: take <item>   (also: get <item>)
    """

    key = "take"
    aliases = ("get",)
    category = "Things"

    def func(self, ctx: Context) -> None:
        if not self.args:
            raise CommandError("Take what?")
        if self.args.lower() in ("all", "everything"):
            raise CommandError("One thing at a time, please.")
        item_id = find_item(
            ctx.world, self.args, ctx.items_here(), f"You see no '{self.args}' here."
        )
        item = ctx.world.items[item_id]
        if not item.takeable:
            raise CommandError(f"The {item.name} won't budge.")
        if len(ctx.inventory()) >= MAX_CARRIED:
            raise CommandError("Your hands are full. Drop something first.")
        ctx.state.move_item(item_id, ctx.location)
        ctx.emit_room(
            ctx.player.room, "take", f"{ctx.player.name} takes the {item.name}.", item=item_id
        )
        ctx.reply(f"You take the {item.name}.")


class Drop(Command):
    """Put down something you carry.

    Usage: drop <item>
    """

    key = "drop"
    category = "Things"

    def func(self, ctx: Context) -> None:
        if not self.args:
            raise CommandError("Drop what?")
        item_id = find_item(
            ctx.world, self.args, ctx.inventory(), f"You are not carrying '{self.args}'."
        )
        item = ctx.world.items[item_id]
        ctx.state.move_item(item_id, room_location(ctx.player.room))
        ctx.emit_room(
            ctx.player.room, "drop", f"{ctx.player.name} drops the {item.name}.", item=item_id
        )
        ctx.reply(f"You drop the {item.name}.")


class Give(Command):
    """Hand something you carry to another player in the same room.

    Usage: give <item> to <player>
    """

    key = "give"
    category = "Things"

    def func(self, ctx: Context) -> None:
        match = _GIVE_SYNTAX.match(self.args)
        if match is None:
            raise CommandError("Usage: give <item> to <player>")
        item_id = find_item(
            ctx.world,
            match["item"],
            ctx.inventory(),
            f"You are not carrying '{match['item']}'.",
        )
        recipient = find_other_player(
            ctx, match["player"], f"There is no '{match['player']}' here.", here=True
        )
        if len(ctx.state.inventory(recipient.key)) >= MAX_CARRIED:
            raise CommandError(f"{recipient.name} cannot carry any more.")
        item = ctx.world.items[item_id]
        ctx.state.move_item(item_id, player_location(recipient.key))
        ctx.emit_room(
            ctx.player.room,
            "give",
            f"{ctx.player.name} gives the {item.name} to {recipient.name}.",
            item=item_id,
            recipient=recipient.name,
        )
        ctx.reply(f"You give the {item.name} to {recipient.name}.")


ITEM_COMMANDS: tuple[type[Command], ...] = (Take, Drop, Give)
