"""Perception: look, examine, inventory. These change nothing and emit nothing."""

from __future__ import annotations

from ..narration import capitalized, describe_room, english_list
from ..profiles import load_profile
from .base import Command, CommandError
from .context import Context
from .description import describe_self
from .matching import clean_query, find_item, find_npc


class Look(Command):
    """Look around, or at something.

    Usage: look
           look <thing>   (same as examine)
    """

    key = "look"
    read_only = True
    aliases = ("l",)
    category = "Looking"

    def func(self, ctx: Context) -> None:
        target = self.args.strip()
        if target.lower() == "at":
            raise CommandError("Look at what?")
        if target[:3].lower() == "at ":
            target = target[3:].strip()
        if target:
            Examine("examine", target).func(ctx)
        else:
            ctx.reply(describe_room(ctx.state, ctx.world, ctx.player.room, ctx.player.key))


class Examine(Command):
    """Look closely at an item, a character or another player.

    Usage: examine <thing>   (also: x <thing>)
    Works for things in the room and things you carry.
    """

    key = "examine"
    read_only = True
    aliases = ("x",)
    category = "Looking"

    def func(self, ctx: Context) -> None:
        if not self.args:
            raise CommandError("Examine what?")
        query = clean_query(self.args)
        if query in ("here", "room", "around"):
            ctx.reply(describe_room(ctx.state, ctx.world, ctx.player.room, ctx.player.key))
            return
        if query in ("me", "self", "myself", ctx.player.key):
            count = len(ctx.inventory())
            description = describe_self(load_profile(ctx.state, ctx.player.key).description)
            ctx.reply(f"You are {ctx.player.name}, carrying {count} thing(s). {description}")
            return
        npc_id = find_npc(ctx.world, query, ctx.npcs_here())
        if npc_id is not None:
            npc = ctx.world.npcs[npc_id]
            ctx.reply(f"{capitalized(npc.name)}: {npc.description}")
            return
        other = ctx.state.player(query)
        if (
            other is not None
            and other.online
            and other.room == ctx.player.room
            and other.key != ctx.player.key
        ):
            items = ctx.world.items
            carried = [items[i].indefinite for i in ctx.state.inventory(other.key) if i in items]
            holding = f" carrying {english_list(carried)}" if carried else ""
            description = load_profile(ctx.state, other.key).description
            if description:
                ctx.reply(f"{other.name}: {description}")
                if carried:
                    ctx.reply(f"{other.name} is carrying {english_list(carried)}.")
            else:
                ctx.reply(f"{other.name} is a fellow traveller{holding}.")
            return
        item_id = find_item(
            ctx.world,
            query,
            ctx.items_here() + ctx.inventory(),
            f"You see no '{self.args}' here.",
        )
        item = ctx.world.items[item_id]
        ctx.reply(f"{capitalized(item.name)}: {item.description}")


class Inventory(Command):
    """List what you are carrying.

    Usage: inventory   (also: i, inv)
    """

    key = "inventory"
    read_only = True
    aliases = ("i", "inv")
    category = "Looking"

    def func(self, ctx: Context) -> None:
        carried = [ctx.world.items[item_id].indefinite for item_id in ctx.inventory()]
        if carried:
            ctx.reply(f"You are carrying {english_list(carried)}.")
        else:
            ctx.reply("You are empty-handed.")


LOOKING_COMMANDS: tuple[type[Command], ...] = (Look, Examine, Inventory)
