"""Put the world's starting state into a store, once.

Seeding is per entity - an item or NPC gets its start position only if the store has none -
so it is safe to run on every worker start, and a world file that gains items later is
merged in without disturbing the state of everything already in play.
"""

from __future__ import annotations

from .store.base import Store, Tx
from .store.records import ROOM_LOCATION, ClockRecord, NpcRecord, room_location
from .store.state import GameState
from .world import World

_DIGEST_KEY = "world_digest"


def seed_world(store: Store, world: World) -> bool:
    """Seed anything missing; returns False when the store already matched this world."""

    def seed(tx: Tx) -> bool:
        state = GameState(tx)
        upgraded = state.upgrade_presence()
        if state.meta(_DIGEST_KEY) == world.digest:
            return upgraded
        for item in world.items.values():
            location = state.item_location(item.id)
            # A room deleted from the world file must not swallow the item for ever.
            stale = location is not None and (
                location.startswith(ROOM_LOCATION)
                and location[len(ROOM_LOCATION) :] not in world.rooms
            )
            if location is None or stale:
                state.move_item(item.id, room_location(item.room))
        for npc in world.npcs.values():
            record = state.npc(npc.id)
            if record is None or record.room not in world.rooms:
                wander = npc.route or [npc.room]
                state.put_npc(npc.id, NpcRecord(room=npc.room, step=wander.index(npc.room)))
        if state.clock() is None:
            state.put_clock(ClockRecord(turn=0, phase=world.clock.phases[0].name))
        state.put_meta(_DIGEST_KEY, world.digest)
        return True

    return store.transaction(seed)
