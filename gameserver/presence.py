"""Entering and leaving the world: presence flags, session end, and the events others see."""

from __future__ import annotations

from typing import Literal

from .events import EventDraft
from .store.records import PlayerRecord
from .store.state import GameState
from .topics import WORLD_TOPIC, room_topic

LeaveReason = Literal["quit", "timeout"]


def enter_world(state: GameState, player: PlayerRecord) -> tuple[PlayerRecord, list[EventDraft]]:
    """Mark ``player`` online in their room and announce it."""
    player = state.put_player(player.model_copy(update={"online": True}))
    name = player.name
    return player, [
        EventDraft(room_topic(player.room), "arrive", f"{name} appears.", name, {"player": name}),
        EventDraft(WORLD_TOPIC, "login", f"{name} has entered the world.", name, {"player": name}),
    ]


def leave_world(
    state: GameState, player: PlayerRecord, reason: LeaveReason
) -> tuple[PlayerRecord, list[EventDraft]]:
    """End the player's session, take them offline and announce it."""
    if player.session is not None:
        session = state.session(player.session)
        if session is not None:
            state.put_session(session.model_copy(update={"ended": True}))
    player = state.put_player(
        player.model_copy(update={"online": False, "session": None, "private_topic": None})
    )
    name = player.name
    room_text = (
        f"{name} fades from view." if reason == "quit" else f"{name} dozes off and fades away."
    )
    world_text = f"{name} has left the world."
    data: dict[str, str | int | float | bool | None] = {"player": name, "reason": reason}
    return player, [
        EventDraft(room_topic(player.room), "depart", room_text, name, data),
        EventDraft(WORLD_TOPIC, "logout", world_text, name, data),
    ]
