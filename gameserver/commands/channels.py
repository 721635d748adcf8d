"""Channels: talk to everyone who has not left the channel, wherever they are.

A channel's messages go out on the world topic (every client follows it, so a message costs
one event whoever listens); a client hides the channels its player left, and the server
refuses to let them speak there.
"""

from __future__ import annotations

from ..narration import english_list
from ..profiles import load_profile, save_profile
from .base import Command, CommandError
from .context import Context

#: The channels of the world; everyone is in each until they leave it.
CHANNELS = ("ooc",)


class Ooc(Command):
    """Talk on the out-of-character channel, heard everywhere by those on it.

    Usage: ooc <message>   (also: chat <message>)
    See 'channel' to leave it or join it again.
    """

    key = "ooc"
    aliases = ("chat",)
    category = "Talking"

    def func(self, ctx: Context) -> None:
        message = self.args.strip()
        if not message:
            raise CommandError("Say what on the ooc channel?")
        if "ooc" in load_profile(ctx.state, ctx.player.key).left_channels:
            raise CommandError("You left the ooc channel; 'channel join ooc' to talk there.")
        name = ctx.player.name
        ctx.emit_world("channel", f"[ooc] {name}: {message}", channel="ooc", message=message)
        ctx.reply(f"[ooc] {name}: {message}")


class Channel(Command):
    """List the channels, or join or leave one.

    Usage: channel              (the channels, and whether you are on them)
           channel leave <name> (stop hearing it)
           channel join <name>  (hear it again)
    """

    key = "channel"
    aliases = ("channels",)
    # Read-only (its listing, which clients ask for after each login); a form that
    # changes something is re-run as a normal command (gameserver.rules).
    read_only = True
    category = "Talking"

    def func(self, ctx: Context) -> None:
        profile = load_profile(ctx.state, ctx.player.key)
        verb, _, name = self.args.lower().partition(" ")
        name = name.strip()
        if not verb:
            listed = [
                f"{c} ({'left' if c in profile.left_channels else 'joined'})" for c in CHANNELS
            ]
            ctx.reply(f"Channels: {english_list(listed)}.")
            return
        if verb not in ("join", "leave") or name not in CHANNELS:
            raise CommandError(
                f"Usage: channel join|leave <name>; channels: {', '.join(CHANNELS)}."
            )
        left = set(profile.left_channels)
        if verb == "leave":
            left.add(name)
        else:
            left.discard(name)
        save_profile(
            ctx.state, ctx.player.key, profile.model_copy(update={"left_channels": sorted(left)})
        )
        ctx.reply(f"You {verb} the {name} channel.")


CHANNEL_COMMANDS: tuple[type[Command], ...] = (Ooc, Channel)
