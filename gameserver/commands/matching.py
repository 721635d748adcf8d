"""Finding what a player means by "lamp", "the brass lamp" or "bo" among what is at hand."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from ..narration import capitalized, english_list
from ..store.records import PlayerRecord, player_key
from ..world import ItemDef, NpcDef, World
from .base import CommandError
from .context import Context

#: Names read to resolve an abbreviated player name: a bounded peek, so a crowd costs no more
#: than this (in a crowd, a full name always works).
PREFIX_PEEK = 100

_ARTICLES = ("the ", "a ", "an ", "some ")


def clean_query(text: str) -> str:
    text = " ".join(text.lower().split())
    for article in _ARTICLES:
        if text.startswith(article):
            return text[len(article) :]
    return text


def _names(thing: ItemDef | NpcDef) -> list[str]:
    names = [thing.id, thing.name.lower()]
    if isinstance(thing, ItemDef):
        names.extend(alias.lower() for alias in thing.aliases)
    return names


def _score(thing: ItemDef | NpcDef, query: str) -> int:
    """2 for an exact name or alias, 1 for a word of the name, 0 for no match."""
    names = _names(thing)
    if query in names or clean_query(thing.name) == query:
        return 2
    if any(query in name.split() for name in names):
        return 1
    return 0


def _pick(
    query: str, things: Sequence[ItemDef | NpcDef], missing: str, suggestions: Sequence[str]
) -> str:
    for wanted in (2, 1):
        found = [thing for thing in things if _score(thing, query) == wanted]
        if len(found) == 1:
            return found[0].id
        if len(found) > 1:
            options = english_list([f"the {thing.name}" for thing in found])
            raise CommandError(f"Which do you mean: {options}?")
    close = difflib.get_close_matches(query, suggestions, n=1, cutoff=0.7)
    tip = f" Did you mean '{close[0]}'?" if close else ""
    raise CommandError(f"{missing}{tip}")


def find_item(world: World, query: str, item_ids: Sequence[str], missing: str) -> str:
    """The id of the item among ``item_ids`` that ``query`` names; ``missing`` is the refusal
    when none does (a near miss adds a suggestion)."""
    items = [world.items[item_id] for item_id in item_ids]
    names = [name for item in items for name in _names(item)[1:]]
    return _pick(clean_query(query), items, missing, names)


def find_npc(world: World, query: str, npc_ids: Sequence[str]) -> str | None:
    npcs = [world.npcs[npc_id] for npc_id in npc_ids]
    query = clean_query(query)
    found = [npc for npc in npcs if _score(npc, query)]
    return found[0].id if found else None


def find_player(query: str, players: Sequence[PlayerRecord], missing: str) -> PlayerRecord:
    """A player by case-insensitive name or unique prefix."""
    query = clean_query(query)
    exact = [player for player in players if player.key == query]
    if exact:
        return exact[0]
    prefixed = [player for player in players if player.key.startswith(query)]
    if len(prefixed) == 1 and query:
        return prefixed[0]
    if len(prefixed) > 1 and query:
        raise CommandError(f"Which do you mean: {english_list([p.name for p in prefixed])}?")
    raise CommandError(missing)


def refuse_npc(ctx: Context, query: str) -> None:
    """A character of the world here answers no whisper and takes no gift: say so, rather
    than "nobody called Tobin is here" with Tobin standing in the room."""
    npc_id = find_npc(ctx.world, query, ctx.npcs_here())
    if npc_id is not None:
        raise CommandError(f"{capitalized(ctx.world.npcs[npc_id].name)} takes no notice of you.")


def find_other_player(ctx: Context, query: str, missing: str, *, here: bool) -> PlayerRecord:
    """Another online player by full name (one document read) or unique prefix (among a
    bounded peek at who is present): in the actor's room if ``here``, else anywhere."""
    key = clean_query(query)
    room = ctx.player.room

    def fits(other: PlayerRecord | None) -> bool:
        return (
            other is not None
            and other.online
            and other.key != ctx.player.key
            and (not here or other.room == room)
        )

    if key and key == ctx.player.key:
        raise CommandError("That is you.")  # as `page` and `ignore` say, not "nobody here"
    other = ctx.state.player(key) if key else None
    if other is not None and fits(other):
        return other
    if here:
        keys = [player_key(name) for name in ctx.state.present_names(room, PREFIX_PEEK)]
    else:
        keys = ctx.state.online_players(PREFIX_PEEK)
    candidates = [ctx.state.player(k) for k in keys if key and k.startswith(key)]
    found = [c for c in candidates if c is not None and fits(c)]
    if not found and key:
        refuse_npc(ctx, query)
    return find_player(query, found, missing)
