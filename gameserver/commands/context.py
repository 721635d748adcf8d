"""Everything a command's ``func`` may touch: the transaction's state, the world, the acting
player, the reply being written and the events being emitted. (The command set a command was
found in is the command's own ``cmdset``: nothing here depends on commands.)"""

from __future__ import annotations

from collections.abc import Iterable

from ..events import EventDraft
from ..protocol import EventValue
from ..store.records import PlayerRecord, player_location
from ..store.state import GameState
from ..topics import WORLD_TOPIC, room_topic
from ..world import RoomDef, World


class Context:
    """One command invocation. Commands read and write through ``state`` (the current
    transaction), never anything else, so a retried transaction simply runs them again."""

    def __init__(
        self,
        state: GameState,
        world: World,
        player: PlayerRecord,
        now: float,
    ) -> None:
        self.state = state
        self.world = world
        self.player = player
        self.now = now
        self.session_ended = False
        self._reply: list[str] = []
        self.events: list[EventDraft] = []

    # --- output --------------------------------------------------------------------------------

    def reply(self, text: str) -> None:
        """Add a paragraph to the acting player's reply."""
        self._reply.append(text)

    @property
    def reply_text(self) -> str:
        return "\n".join(self._reply)

    def emit(self, topic: str, kind: str, text: str, **data: EventValue) -> None:
        """Publish an event caused by the acting player."""
        self.events.append(EventDraft(topic, kind, text, self.player.name, data))

    def emit_room(self, room_id: str, kind: str, text: str, **data: EventValue) -> None:
        self.emit(room_topic(room_id), kind, text, **data)

    def emit_world(self, kind: str, text: str, **data: EventValue) -> None:
        self.emit(WORLD_TOPIC, kind, text, **data)

    def emit_private(self, player: PlayerRecord, kind: str, text: str, **data: EventValue) -> None:
        """Send an event to one online player's private topic only."""
        if player.private_topic is not None:
            self.emit(player.private_topic, kind, text, **data)

    def add_events(self, drafts: Iterable[EventDraft]) -> None:
        self.events.extend(drafts)

    # --- the acting player ---------------------------------------------------------------------

    @property
    def room(self) -> RoomDef:
        return self.world.room(self.player.room)

    def update_player(self, **changes: object) -> PlayerRecord:
        self.player = self.state.put_player(self.player.model_copy(update=changes))
        return self.player

    def inventory(self) -> list[str]:
        """Ids of the items the player carries (that the world still defines)."""
        return [i for i in self.state.inventory(self.player.key) if i in self.world.items]

    def items_here(self) -> list[str]:
        return [i for i in self.state.items_in_room(self.player.room) if i in self.world.items]

    def npcs_here(self) -> list[str]:
        return [n for n in self.state.npcs_in(self.player.room) if n in self.world.npcs]

    @property
    def location(self) -> str:
        """The player's own item location (where carried items are)."""
        return player_location(self.player.key)
