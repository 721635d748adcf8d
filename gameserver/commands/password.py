"""Changing one's password. The change itself is a login with ``new_password`` (the old
password proves who asks, and no password ever travels as a command line, which the server
logs as an action); this command is its help, and the answer to anyone who types it at a
client that does not ask for passwords itself."""

from __future__ import annotations

from .base import Command, CommandError
from .context import Context


class Password(Command):
    """Change your password.

    Usage: password
    The terminal client asks for your current password and the new one twice, without
    showing them. Passwords are 4 to 128 characters.
    """

    key = "password"
    category = "System"

    def func(self, ctx: Context) -> None:
        raise CommandError(
            "Type 'password' alone at the terminal client's prompt: it asks for the passwords"
            " without showing them (they are never sent as a command)."
        )


PASSWORD_COMMANDS: tuple[type[Command], ...] = (Password,)
