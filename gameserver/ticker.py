"""The world moving on its own: the clock, wandering and chattering NPCs, idle sessions.

:func:`tick` is idempotent per clock turn (``now // tick_seconds``): whichever process calls it
first for a turn does the work and later calls for that turn do nothing. So any number of
workers, or a single timer in the front, may call it, as often as they like.
"""

from __future__ import annotations

import random
import time

from .events import EventDraft, publish
from .narration import capitalized
from .presence import leave_world
from .protocol import Event
from .store.base import Store, Tx
from .store.records import ClockRecord, NpcRecord
from .store.state import GameState
from .topics import WORLD_TOPIC, room_topic
from .world import NpcDef, World


def tick(store: Store, world: World, now: float | None = None) -> list[Event]:
    """Advance the world to the turn ``now`` falls in; returns the events to publish."""
    now = time.time() if now is None else now
    turn = int(now // world.clock.tick_seconds)

    def advance(tx: Tx) -> list[Event] | None:
        state = GameState(tx)
        clock = state.clock()
        if clock is not None and turn <= clock.turn:
            return None  # another process already ran this turn
        drafts: list[EventDraft] = []
        phase = world.clock.phase_at(turn)
        if clock is not None and phase.name != clock.phase:
            drafts.append(
                EventDraft(WORLD_TOPIC, "clock", phase.message, None, {"phase": phase.name})
            )
        state.put_clock(ClockRecord(turn=turn, phase=phase.name))
        for npc in world.npcs.values():
            drafts.extend(_npc_turn(state, world, npc, turn))
        drafts.extend(_reap_idle(state, now))
        return publish(state, drafts, now)

    events = store.transaction(advance)
    if events is None:
        return []
    store.purge_expired()
    return events


def _npc_turn(state: GameState, world: World, npc: NpcDef, turn: int) -> list[EventDraft]:
    record = state.npc(npc.id)
    if record is None:
        return []
    # Seeded by id and turn: every process that might run this turn would decide the same.
    rng = random.Random(f"{npc.id}:{turn}")
    name = capitalized(npc.name)
    if (npc.route or npc.roam) and turn % npc.move_every == 0:
        return _npc_move(state, world, npc, record, rng)
    if npc.lines and turn % npc.talk_every == 0 and state.present_count(record.room):
        line = rng.choice(npc.lines)
        return [
            EventDraft(
                room_topic(record.room), "npc_say", f'{name} says, "{line}"', None, {"npc": npc.id}
            )
        ]
    return []


def _npc_move(
    state: GameState, world: World, npc: NpcDef, record: NpcRecord, rng: random.Random
) -> list[EventDraft]:
    exits = world.room(record.room).exits
    if npc.route:
        step = (record.step + 1) % len(npc.route)
        target = npc.route[step]
    else:
        step = 0
        options = sorted({room for room in exits.values() if room in npc.roam})
        if not options:
            return []
        target = rng.choice(options)
    state.put_npc(npc.id, NpcRecord(room=target, step=step))
    direction = next((d for d, room in exits.items() if room == target), None)
    name = capitalized(npc.name)
    data: dict[str, str | int | float | bool | None] = {"npc": npc.id, "direction": direction}
    drafts = []
    # Nobody listens in an empty room; skipping those keeps the logs for what players see.
    if state.present_count(record.room):
        leaves = f"{name} leaves {direction}." if direction else f"{name} wanders off."
        drafts.append(EventDraft(room_topic(record.room), "npc_depart", leaves, None, data))
    if state.present_count(target):
        drafts.append(EventDraft(room_topic(target), "npc_arrive", f"{name} arrives.", None, data))
    return drafts


#: Online players the idle reaper looks at per tick: a tick's cost stays bounded however many
#: are online, and a sweep of 5,000 takes 25 ticks (about 2 minutes at the default 5 s).
REAP_PER_TICK = 200
_REAP_CURSOR = "reap_cursor"


def _reap_idle(state: GameState, now: float) -> list[EventDraft]:
    """Take players whose session expired out of the world, a slice of the online players per
    tick (the cursor in the store says where the last slice ended)."""
    cursor = state.meta(_REAP_CURSOR) or ""
    keys = state.online_players_after(str(cursor), REAP_PER_TICK)
    next_cursor = keys[-1] if len(keys) == REAP_PER_TICK else ""
    if next_cursor != cursor:
        state.put_meta(_REAP_CURSOR, next_cursor)
    drafts: list[EventDraft] = []
    for key in keys:
        player = state.player(key)
        if player is None:
            continue
        session = state.session(player.session) if player.session else None
        if session is None or not session.is_live(now):
            _, left = leave_world(state, player, "timeout")
            drafts.extend(left)
    return drafts
