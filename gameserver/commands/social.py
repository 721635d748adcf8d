"""Talking to others: say, emote, whisper, shout, who."""

from __future__ import annotations

from ..narration import NAMES_SHOWN, english_list
from ..profiles import load_profile
from .base import Command, CommandError
from .context import Context
from .matching import find_other_player


class Say(Command):
    """Say something to everyone in the room.

    Usage: say <message>
           '<message>   (a leading quote works too: 'hello)
    """

    key = "say"
    aliases = ("'", '"')
    category = "Talking"

    def func(self, ctx: Context) -> None:
        message = self.args.strip()
        if not message:
            raise CommandError("Say what?")
        name = ctx.player.name
        ctx.emit_room(ctx.player.room, "say", f'{name} says, "{message}"', message=message)
        ctx.reply(f'You say, "{message}"')


class Emote(Command):
    """Act something out for everyone in the room; your name is put in.

    Usage: emote <action>   (also: pose <action>, :<action>)
    "emote waves." shows "Alice waves." Write /me to put your name elsewhere:
    "emote Smiling, /me bows." shows "Smiling, Alice bows."
    """

    key = "emote"
    aliases = ("pose", ":", "me")
    category = "Talking"

    def func(self, ctx: Context) -> None:
        action = self.args.strip()
        if not action:
            raise CommandError("Emote what?")
        if action[-1] not in ".!?\"'":
            action += "."
        name = ctx.player.name
        text = action.replace("/me", name) if "/me" in action else f"{name} {action}"
        ctx.emit_room(ctx.player.room, "emote", text, action=action)
        ctx.reply(text)


class Whisper(Command):
    """Say something privately to one player, wherever they are. Nobody else hears it.

    Usage: whisper <player> <message>   (also: tell <player> <message>)
    """

    key = "whisper"
    aliases = ("tell",)
    category = "Talking"

    def func(self, ctx: Context) -> None:
        target, _, message = self.args.partition(" ")
        message = message.strip()
        if not target or not message:
            raise CommandError("Usage: whisper <player> <message>")
        recipient = find_other_player(
            ctx, target.rstrip(":,"), f"Nobody called '{target}' is around.", here=False
        )
        if ctx.player.key in load_profile(ctx.state, recipient.key).ignoring:
            raise CommandError(f"{recipient.name} is not listening to you.")
        ctx.emit_private(
            recipient,
            "whisper",
            f'{ctx.player.name} whispers to you, "{message}"',
            sender=ctx.player.name,
            message=message,
        )
        ctx.reply(f'You whisper to {recipient.name}, "{message}"')


class Shout(Command):
    """Shout something that everyone in the world hears.

    Usage: shout <message>
    """

    key = "shout"
    aliases = ("yell",)
    category = "Talking"

    def func(self, ctx: Context) -> None:
        message = self.args.strip()
        if not message:
            raise CommandError("Shout what?")
        ctx.emit_world("shout", f'{ctx.player.name} shouts, "{message}"', message=message)
        ctx.reply(f'You shout, "{message}"')


class Who(Command):
    """List the players in the world and where they are.

    Usage: who
    """

    key = "who"
    read_only = True
    category = "Talking"

    def func(self, ctx: Context) -> None:
        # At most NAMES_SHOWN documents read, however many are online.
        entries = []
        for key in ctx.state.online_players(NAMES_SHOWN):
            player = ctx.state.player(key)
            if player is not None:
                entries.append(f"{player.name} ({ctx.world.rooms[player.room].name})")
        count = max(ctx.state.online_count(), len(entries))
        if count > len(entries):
            entries.append(f"{count - len(entries):,} others")
        ctx.reply(f"{count} player(s) online: {english_list(entries)}.")


SOCIAL_COMMANDS: tuple[type[Command], ...] = (Say, Emote, Whisper, Shout, Who)
