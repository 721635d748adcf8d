"""Handling things: take, drop, give."""

from __future__ import annotations

import re

from ..narration import english_list
from ..store.records import player_location, room_location
from .base import Command, CommandError
from .context import Context
from .matching import find_item, find_other_player

MAX_CARRIED = 12
ALL_WORDS = ("all", "everything")
_GIVE_SYNTAX = re.compile(r"^(?P<item>.+?)\s+to\s+(?P<player>\S+)$", re.IGNORECASE)


class Take(Command):
    """Pick something up, or everything here that can be carried.

    Usage: take <item>   (also: get <item>)
           take all
    """

    key = "take"
    aliases = ("get",)
    category = "Things"

    def func(self, ctx: Context) -> None:
        if not self.args:
            raise CommandError("Take what?")
        if self.args.lower() in ALL_WORDS:
            take_all(ctx)
            return
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
    """Put down something you carry, or everything.

    Usage: drop <item>
           drop all
    """

    key = "drop"
    category = "Things"

    def func(self, ctx: Context) -> None:
        if not self.args:
            raise CommandError("Drop what?")
        if self.args.lower() in ALL_WORDS:
            drop_all(ctx)
            return
        item_id = find_item(
            ctx.world, self.args, ctx.inventory(), f"You are not carrying '{self.args}'."
        )
        item = ctx.world.items[item_id]
        ctx.state.move_item(item_id, room_location(ctx.player.room))
        ctx.emit_room(
            ctx.player.room, "drop", f"{ctx.player.name} drops the {item.name}.", item=item_id
        )
        ctx.reply(f"You drop the {item.name}.")


def take_all(ctx: Context) -> None:
    """Take every takeable item here, as far as the hands allow."""
    takeable = [i for i in ctx.items_here() if ctx.world.items[i].takeable]
    if not takeable:
        raise CommandError("There is nothing here you can take.")
    free = MAX_CARRIED - len(ctx.inventory())
    if free <= 0:
        raise CommandError("Your hands are full. Drop something first.")
    taken = takeable[:free]
    for item_id in taken:
        name = ctx.world.items[item_id].name
        ctx.state.move_item(item_id, ctx.location)
        ctx.emit_room(ctx.player.room, "take", f"{ctx.player.name} takes the {name}.", item=item_id)
    names = english_list([f"the {ctx.world.items[i].name}" for i in taken])
    left = " Your hands are full now." if len(taken) < len(takeable) else ""
    ctx.reply(f"You take {names}.{left}")


def drop_all(ctx: Context) -> None:
    carried = ctx.inventory()
    if not carried:
        raise CommandError("You are not carrying anything.")
    for item_id in carried:
        name = ctx.world.items[item_id].name
        ctx.state.move_item(item_id, room_location(ctx.player.room))
        ctx.emit_room(ctx.player.room, "drop", f"{ctx.player.name} drops the {name}.", item=item_id)
    ctx.reply(f"You drop {english_list([f'the {ctx.world.items[i].name}' for i in carried])}.")


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
