"""Describing oneself: what others see when they look at you."""

from __future__ import annotations

from ..profiles import MAX_DESCRIPTION_CHARS, load_profile, save_profile
from .base import Command, CommandError
from .context import Context


class SetDesc(Command):
    """Describe yourself; others see it when they look at you.

    Usage: setdesc <description>
           setdesc             (what others see now)
           setdesc clear       (no description)
    """

    key = "setdesc"
    aliases = ("describe",)
    category = "System"

    def func(self, ctx: Context) -> None:
        text = " ".join(self.args.split())
        if len(text) > MAX_DESCRIPTION_CHARS:
            raise CommandError(f"A description is at most {MAX_DESCRIPTION_CHARS} characters.")
        profile = load_profile(ctx.state, ctx.player.key)
        if not text:
            # Shown, not cleared: a bare `describe`, typed to see it, used to erase it.
            ctx.reply(describe_self(profile.description))
            return
        if text.lower() == CLEAR_WORD:
            text = ""
        save_profile(ctx.state, ctx.player.key, profile.model_copy(update={"description": text}))
        ctx.reply(f"Others now see: {text}" if text else "Your description is cleared.")


#: `setdesc clear` clears the description (so no description can be that one word).
CLEAR_WORD = "clear"


def describe_self(description: str) -> str:
    """What a player is told of their own description."""
    if description:
        return f"Others see: {description}"
    return "You have no description. Usage: setdesc <description>"


DESCRIPTION_COMMANDS: tuple[type[Command], ...] = (SetDesc,)
