"""Paging: a message to one player wherever they are, kept for them if they are offline."""

from __future__ import annotations

from ..mailbox import PageRefused, WaitingPage, leave_page, page_text
from ..profiles import load_profile
from .base import Command, CommandError
from .context import Context
from .players import any_player


class Page(Command):
    """Send a message to a player anywhere in the world, even offline.

    Usage: page <player> <message>
    An online player gets it at once; an offline one at their next login.
    """

    key = "page"
    aliases = ("p",)
    category = "Talking"

    def func(self, ctx: Context) -> None:
        target, _, message = self.args.partition(" ")
        message = message.strip()
        if not target or not message:
            raise CommandError("Usage: page <player> <message>")
        recipient = any_player(ctx, target)
        if ctx.player.key in load_profile(ctx.state, recipient.key).ignoring:
            raise CommandError(f"{recipient.name} is not listening to you.")
        sender = ctx.player.name
        if recipient.online and recipient.private_topic is not None:
            text = page_text(sender, message)
            ctx.emit_private(recipient, "page", text, sender=sender, message=message)
            ctx.reply(f'You page {recipient.name}, "{message}"')
            return
        try:
            leave_page(
                ctx.state, recipient.key, WaitingPage(sender=sender, message=message, sent=ctx.now)
            )
        except PageRefused as exc:
            raise CommandError(f"{recipient.name} is away. {exc}") from None
        ctx.reply(
            f'{recipient.name} is away; they will get your page at their next login: "{message}"'
        )


PAGE_COMMANDS: tuple[type[Command], ...] = (Page,)
