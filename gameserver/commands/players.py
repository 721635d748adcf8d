"""Finding a player by name wherever they are, online or not (page, ignore)."""

from __future__ import annotations

from ..store.records import PlayerRecord, player_key
from .base import CommandError
from .context import Context


def any_player(ctx: Context, name: str) -> PlayerRecord:
    """The player called ``name`` (any case), online or not; refuses unknown names and the
    acting player."""
    name = name.strip().rstrip(":,")
    player = ctx.state.player(player_key(name)) if name else None
    if player is None:
        raise CommandError(f"Nobody is called '{name}'.")
    if player.key == ctx.player.key:
        raise CommandError("That is you.")
    return player
