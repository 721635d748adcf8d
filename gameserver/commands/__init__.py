"""Player commands, Evennia-style: one small class per command; docstrings are the help."""

from __future__ import annotations

from .admin import ADMIN_COMMANDS
from .base import Command, CommandError, CommandSet, split_command
from .context import Context
from .items import ITEM_COMMANDS
from .looking import LOOKING_COMMANDS
from .movement import MOVEMENT_COMMANDS
from .social import SOCIAL_COMMANDS
from .system import SYSTEM_COMMANDS

__all__ = ["Command", "CommandError", "CommandSet", "Context", "default_commands", "split_command"]


def default_commands() -> CommandSet:
    """The standard command set; build your own CommandSet to add or replace commands."""
    return CommandSet(
        (
            *LOOKING_COMMANDS,
            *MOVEMENT_COMMANDS,
            *ITEM_COMMANDS,
            *SOCIAL_COMMANDS,
            *SYSTEM_COMMANDS,
            *ADMIN_COMMANDS,
        )
    )
