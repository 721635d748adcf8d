"""Entering and leaving the world: presence flags, session end, and the events others see."""

from __future__ import annotations

from typing import Literal

from .events import EventDraft
from .store.records import PlayerRecord
from .store.state import GameState
from .topics import WORLD_TOPIC, room_topic

LeaveReason = Literal["quit", "timeout"]

#: Logins and logouts are told to the whole world (every player online hears them) only while
#: at most this many players are online. The world topic reaches every one of them, so in a
#: busier world each login would cost a delivery per player online, and a login wave a number
#: of deliveries that grows with the square of the crowd (1,000 players logging in: half a
#: million). Beyond it the player's room still sees them appear and fade (arrive, depart), and
#: ``who`` lists who is online. 100 deliveries is about what one ``say`` in a busy room costs.
WORLD_ANNOUNCEMENTS_UP_TO = 100


def enter_world(state: GameState, player: PlayerRecord) -> tuple[PlayerRecord, list[EventDraft]]:
    """Mark ``player`` online in their room and announce it (to the world too while it is
    not crowded: WORLD_ANNOUNCEMENTS_UP_TO)."""
    player = state.put_player(player.model_copy(update={"online": True}))
    name = player.name
    drafts = [
        EventDraft(room_topic(player.room), "arrive", f"{name} appears.", name, {"player": name})
    ]
    if state.online_count() <= WORLD_ANNOUNCEMENTS_UP_TO:
        text = f"{name} has entered the world."
        drafts.append(EventDraft(WORLD_TOPIC, "login", text, name, {"player": name}))
    return player, drafts


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
    data: dict[str, str | int | float | bool | None] = {"player": name, "reason": reason}
    drafts = [EventDraft(room_topic(player.room), "depart", room_text, name, data)]
    if state.online_count() < WORLD_ANNOUNCEMENTS_UP_TO:  # as many as heard the login
        drafts.append(EventDraft(WORLD_TOPIC, "logout", f"{name} has left the world.", name, data))
    return player, drafts
