"""A home to go back to: ``sethome`` chooses it, ``home`` takes you there from anywhere."""

from __future__ import annotations

from ..narration import describe_room
from ..presence import comings_and_goings
from ..profiles import load_profile, save_profile
from .base import Command, CommandError
from .context import Context


class Home(Command):
    """Go straight home, from anywhere (the world's start, until you choose one).

    Usage: home
    See 'sethome'.
    """

    key = "home"
    category = "Moving"

    def func(self, ctx: Context) -> None:
        home = load_profile(ctx.state, ctx.player.key).home
        if home not in ctx.world.rooms:  # never chosen, or gone from the world
            home = ctx.world.start_room
        origin = ctx.player.room
        if home == origin:
            raise CommandError("You are home already.")
        name = ctx.player.name
        ctx.update_player(room=home)
        ctx.add_events(comings_and_goings(ctx.state, origin, "depart", f"{name} heads home.", name))
        ctx.add_events(comings_and_goings(ctx.state, home, "arrive", f"{name} arrives home.", name))
        ctx.reply(describe_room(ctx.state, ctx.world, home, ctx.player.key))


class SetHome(Command):
    """Make the room you are in your home.

    Usage: sethome
    """

    key = "sethome"
    category = "Moving"

    def func(self, ctx: Context) -> None:
        profile = load_profile(ctx.state, ctx.player.key)
        save_profile(
            ctx.state, ctx.player.key, profile.model_copy(update={"home": ctx.player.room})
        )
        ctx.reply(f"{ctx.room.name} is your home now; 'home' brings you back.")


HOME_COMMANDS: tuple[type[Command], ...] = (Home, SetHome)
