"""The game's typed view of one store transaction.

Keeps the secondary indexes (who is in which room, what lies where) in step with the records
they index, inside the same transaction, so they can never disagree.
"""

from __future__ import annotations

from typing import Any

from ..protocol import Event, encode
from .base import Tx
from .records import (
    Account,
    ActionRecord,
    ClockRecord,
    NpcRecord,
    PlayerRecord,
    SessionRecord,
    player_location,
    room_location,
)

# Long enough to cover any client retry window; the ids only need to outlive the retries.
ACTION_RETENTION_SECONDS = 24 * 3600
# Session documents outlive their expiry (see SessionRecord); each write renews this.
SESSION_RETENTION_SECONDS = 7 * 24 * 3600

_ACCOUNT = "account"
_SESSION = "session"
_PLAYER = "player"
_ONLINE = "online"
# Who is in a room, as display names (the key is the lower-cased name): a room's description
# shows names, and a crowded room must not cost one player document per person present.
_PRESENT = "present"
_META_PRESENCE = "presence_format"
PRESENCE_FORMAT = 2  # 1 kept player keys in "room_players"
_ITEM = "item"
_ITEMS_AT = "items_at"
_NPC = "npc"
_NPCS_IN = "npcs_in"
_SEQ = "seq"
_ACTION = "action"
_CLOCK = "clock"
_META = "meta"


class GameState:
    """Typed reads and writes of game state within one transaction."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # --- accounts and sessions -----------------------------------------------------------------

    def account(self, key: str) -> Account | None:
        return self.tx.get_record(_ACCOUNT, key, Account)

    def put_account(self, account: Account) -> None:
        self.tx.put_record(_ACCOUNT, account.key, account)

    def session(self, key: str) -> SessionRecord | None:
        return self.tx.get_record(_SESSION, key, SessionRecord)

    def put_session(self, session: SessionRecord) -> None:
        self.tx.put_record(_SESSION, session.key, session, ttl=SESSION_RETENTION_SECONDS)

    def delete_session(self, key: str) -> None:
        self.tx.delete(_SESSION, key)

    # --- players -------------------------------------------------------------------------------

    def player(self, key: str) -> PlayerRecord | None:
        return self.tx.get_record(_PLAYER, key, PlayerRecord)

    def put_player(self, player: PlayerRecord) -> PlayerRecord:
        """Write a player and re-index presence (only online players count as present)."""
        old = self.player(player.key)
        was_present = old is not None and old.online
        if was_present and not (player.online and player.room == old.room):
            self.tx.remove_member(_PRESENT, old.room, old.name)
        if player.online and not (was_present and player.room == old.room):
            self.tx.add_member(_PRESENT, player.room, player.name)
        if player.online and not was_present:
            self.tx.add_member(_ONLINE, "", player.key)
        elif was_present and not player.online:
            self.tx.remove_member(_ONLINE, "", player.key)
        self.tx.put_record(_PLAYER, player.key, player)
        return player

    def present_names(self, room_id: str, limit: int) -> list[str]:
        """Display names of at most ``limit`` online players in a room, in a stable order."""
        return self.tx.first_members(_PRESENT, room_id, limit)

    def present_count(self, room_id: str) -> int:
        return self.tx.member_count(_PRESENT, room_id)

    def present_glimpse(self, room_id: str, limit: int) -> tuple[list[str], int]:
        """Names of at most ``limit`` players in a room and how many are there, for a
        description: possibly a moment old (Tx.glimpse_members); never decide on it."""
        return self.tx.glimpse_members(_PRESENT, room_id, limit)

    def present_count_glimpse(self, room_id: str) -> int:
        """How many players are in a room, possibly a moment old, as :meth:`present_glimpse`."""
        return self.tx.glimpse_members(_PRESENT, room_id, 0)[1]

    def online_players(self, limit: int | None = None) -> list[str]:
        """Keys of at most ``limit`` online players, in a stable order. Without a limit, all of
        them: an operator's sweep may want that, never the path of a player's action."""
        if limit is None:
            return sorted(self.tx.members(_ONLINE, ""))
        return self.tx.first_members(_ONLINE, "", limit)

    def online_players_after(self, after: str, limit: int) -> list[str]:
        """Keys of at most ``limit`` online players sorting after ``after``: the idle reaper
        walks the online players a slice per tick."""
        return self.tx.members_after(_ONLINE, "", after, limit)

    def online_count(self) -> int:
        return self.tx.member_count(_ONLINE, "")

    def upgrade_presence(self) -> bool:
        """Build the presence index from the online players if the store predates it (once,
        at start-up; the old "room_players" sets are left as they were)."""
        if self.meta(_META_PRESENCE) == PRESENCE_FORMAT:
            return False
        for key in self.tx.members(_ONLINE, ""):
            player = self.player(key)
            if player is not None and player.online:
                self.tx.add_member(_PRESENT, player.room, player.name)
        self.put_meta(_META_PRESENCE, PRESENCE_FORMAT)
        return True

    # --- items ---------------------------------------------------------------------------------

    def item_location(self, item_id: str) -> str | None:
        raw = self.tx.get(_ITEM, item_id)
        return None if raw is None else str(raw["location"])

    def move_item(self, item_id: str, location: str) -> None:
        old = self.item_location(item_id)
        if old is not None:
            self.tx.remove_member(_ITEMS_AT, old, item_id)
        self.tx.add_member(_ITEMS_AT, location, item_id)
        self.tx.put(_ITEM, item_id, {"location": location})

    def items_at(self, location: str) -> list[str]:
        return sorted(self.tx.members(_ITEMS_AT, location))

    def items_in_room(self, room_id: str) -> list[str]:
        return self.items_at(room_location(room_id))

    def inventory(self, key: str) -> list[str]:
        return self.items_at(player_location(key))

    # --- NPCs ----------------------------------------------------------------------------------

    def npc(self, npc_id: str) -> NpcRecord | None:
        return self.tx.get_record(_NPC, npc_id, NpcRecord)

    def put_npc(self, npc_id: str, npc: NpcRecord) -> None:
        old = self.npc(npc_id)
        if old is not None:
            self.tx.remove_member(_NPCS_IN, old.room, npc_id)
        self.tx.add_member(_NPCS_IN, npc.room, npc_id)
        self.tx.put_record(_NPC, npc_id, npc)

    def npcs_in(self, room_id: str) -> list[str]:
        return sorted(self.tx.members(_NPCS_IN, room_id))

    # --- events --------------------------------------------------------------------------------

    def next_seq(self, topic: str) -> int:
        """The topic's next seq, or a placeholder for it (Tx.reserve): an event's seq is only
        written, in its log entry and the action's record, and sent."""
        return self.tx.reserve(_SEQ, topic)

    def last_seq(self, topic: str) -> int:
        return self.tx.counter(_SEQ, topic)

    def last_seq_glimpse(self, topic: str) -> int:
        """Where a topic's log stands, possibly a moment behind, never ahead
        (Tx.glimpse_counter): to say where a client starts following it, never to decide."""
        return self.tx.glimpse_counter(_SEQ, topic)

    def log_event(self, event: Event) -> None:
        self.tx.log_event(event.topic, event.seq, encode(event))

    # --- applied actions -----------------------------------------------------------------------

    def action(self, player: str, action_id: str) -> ActionRecord | None:
        return self.tx.get_record(_ACTION, f"{player}:{action_id}", ActionRecord)

    def record_action(self, player: str, action_id: str, record: ActionRecord) -> None:
        self.tx.put_record(_ACTION, f"{player}:{action_id}", record, ttl=ACTION_RETENTION_SECONDS)

    # --- world clock and bookkeeping -----------------------------------------------------------

    def clock(self) -> ClockRecord | None:
        return self.tx.get_record(_CLOCK, "", ClockRecord)

    def put_clock(self, clock: ClockRecord) -> None:
        self.tx.put_record(_CLOCK, "", clock)

    def meta(self, key: str) -> Any | None:
        return self.tx.get(_META, key)

    def put_meta(self, key: str, value: Any) -> None:
        self.tx.put(_META, key, value)
