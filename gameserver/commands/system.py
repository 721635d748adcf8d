"""Help and leaving the game."""

from __future__ import annotations

from ..presence import leave_world
from .base import Command, CommandError
from .context import Context


class Help(Command):
    """Show the list of commands, or how to use one.

    Usage: help
           help <command>
    """

    key = "help"
    read_only = True
    aliases = ("?",)
    category = "System"

    def func(self, ctx: Context) -> None:
        topic = self.args.strip().lower()
        if topic:
            command = self.cmdset.find(topic)
            if command is None:
                hint = self.cmdset.suggest(topic)
                tip = f" Did you mean '{hint}'?" if hint else ""
                raise CommandError(f"No help for '{topic}'.{tip}")
            names = ", ".join(command.names())
            ctx.reply(f"{names}\n{command.help_text()}")
            return
        by_category: dict[str, list[str]] = {}
        for command in self.cmdset:
            if command.listed:
                by_category.setdefault(command.category, []).append(
                    f"  {command.key:<10} {command.summary()}"
                )
        lines = ["Commands (type 'help <command>' for details):"]
        for category, entries in by_category.items():
            lines.append(f"{category}:")
            lines.extend(entries)
        ctx.reply("\n".join(lines))


class Quit(Command):
    """Leave the game. Your character and belongings are kept for next time.

    Usage: quit
    """

    key = "quit"
    aliases = ("logout",)
    category = "System"

    def func(self, ctx: Context) -> None:
        ctx.player, drafts = leave_world(ctx.state, ctx.player, "quit")
        ctx.add_events(drafts)
        ctx.session_ended = True
        ctx.reply(f"Goodbye, {ctx.player.name}. Your progress is saved.")


SYSTEM_COMMANDS: tuple[type[Command], ...] = (Help, Quit)
