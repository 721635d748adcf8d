"""Player commands, Evennia-style: one small class per command; docstrings are the help."""

from __future__ import annotations

from .admin import ADMIN_COMMANDS
from .base import Command, CommandError, CommandSet, split_command
from .channels import CHANNEL_COMMANDS
from .clock import CLOCK_COMMANDS
from .context import Context
from .description import DESCRIPTION_COMMANDS
from .home import HOME_COMMANDS
from .ignoring import IGNORE_COMMANDS
from .items import ITEM_COMMANDS
from .looking import LOOKING_COMMANDS
from .movement import MOVEMENT_COMMANDS
from .nicks import NICK_COMMANDS, ExpandNick
from .page import PAGE_COMMANDS
from .password import PASSWORD_COMMANDS
from .social import SOCIAL_COMMANDS
from .system import SYSTEM_COMMANDS

__all__ = ["Command", "CommandError", "CommandSet", "Context", "default_commands", "split_command"]


def default_commands() -> CommandSet:
    """The standard command set; build your own CommandSet to add or replace commands."""
    return CommandSet(
        (
            *LOOKING_COMMANDS,
            *CLOCK_COMMANDS,
            *MOVEMENT_COMMANDS,
            *HOME_COMMANDS,
            *ITEM_COMMANDS,
            *SOCIAL_COMMANDS,
            *PAGE_COMMANDS,
            *CHANNEL_COMMANDS,
            *IGNORE_COMMANDS,
            *SYSTEM_COMMANDS,
            *DESCRIPTION_COMMANDS,
            *NICK_COMMANDS,
            *PASSWORD_COMMANDS,
            *ADMIN_COMMANDS,
        ),
        fallback=ExpandNick,
    )
