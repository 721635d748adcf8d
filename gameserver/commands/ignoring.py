"""Ignoring a player: their whispers and pages are refused; the client hides what they say."""

from __future__ import annotations

from ..narration import english_list
from ..profiles import MAX_IGNORED, load_profile, save_profile
from .base import Command, CommandError
from .context import Context
from .players import any_player


class Ignore(Command):
    """Stop hearing a player: what they say, emote, shout or page you.

    Usage: ignore            (who you ignore)
           ignore <player>
    See 'unignore'.
    """

    key = "ignore"
    # Read-only (its listing, which clients ask for after each login); a form that
    # changes something is re-run as a normal command (gameserver.rules).
    read_only = True
    category = "Talking"

    def func(self, ctx: Context) -> None:
        profile = load_profile(ctx.state, ctx.player.key)
        if not self.args.strip():
            names = [p.name for k in profile.ignoring if (p := ctx.state.player(k)) is not None]
            ctx.reply(
                f"You are ignoring {english_list(names)}." if names else "You are ignoring nobody."
            )
            return
        other = any_player(ctx, self.args)
        if other.key in profile.ignoring:
            raise CommandError(f"You are ignoring {other.name} already.")
        if len(profile.ignoring) >= MAX_IGNORED:
            raise CommandError(f"You ignore {MAX_IGNORED} players already.")
        ignoring = sorted({*profile.ignoring, other.key})
        save_profile(ctx.state, ctx.player.key, profile.model_copy(update={"ignoring": ignoring}))
        ctx.reply(f"You ignore {other.name}.")


class Unignore(Command):
    """Hear a player you ignored again.

    Usage: unignore <player>
    """

    key = "unignore"
    category = "Talking"

    def func(self, ctx: Context) -> None:
        if not self.args.strip():
            raise CommandError("Hear whom again? Usage: unignore <player>")
        other = any_player(ctx, self.args)
        profile = load_profile(ctx.state, ctx.player.key)
        if other.key not in profile.ignoring:
            raise CommandError(f"You are not ignoring {other.name}.")
        ignoring = [key for key in profile.ignoring if key != other.key]
        save_profile(ctx.state, ctx.player.key, profile.model_copy(update={"ignoring": ignoring}))
        ctx.reply(f"You no longer ignore {other.name}.")


IGNORE_COMMANDS: tuple[type[Command], ...] = (Ignore, Unignore)
