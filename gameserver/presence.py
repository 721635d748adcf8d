"""Entering and leaving the world and its rooms: presence flags, session end, and the events
others see (spared to a crowd)."""

from __future__ import annotations

from typing import Literal

from .events import EventDraft
from .protocol import EventValue
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
#: The same for a room: who comes and goes (arrive, depart) is told to the room only while at
#: most this many players are in it, counting the one who comes or goes. Each announcement
#: costs a delivery per player there, so in a crowd every step would cost hundreds, and a
#: crowd's own coming and going a number that grows with its square. A crowded room still
#: hears what is said and done in it, and its description names a few dozen of those
#: present and counts the rest.
ROOM_ANNOUNCEMENTS_UP_TO = 100


def comings_and_goings(
    state: GameState,
    room_id: str,
    kind: Literal["arrive", "depart"],
    text: str,
    actor: str,
    **data: EventValue,
) -> list[EventDraft]:
    """The event telling a room that ``actor`` arrived or left, or none if the room is
    crowded (ROOM_ANNOUNCEMENTS_UP_TO). Call it after the move is written: the count is the
    room's as it is now, from a glimpse as a description's names are (a moment old at worst,
    and nothing written rests on it), so the Redis store need not make the move depend on
    the room's presence (Tx.glimpse_members)."""
    held = state.present_count_glimpse(room_id) + (kind == "depart")  # with who left
    if held > ROOM_ANNOUNCEMENTS_UP_TO:
        return []
    return [EventDraft(room_topic(room_id), kind, text, actor, {"player": actor, **data})]


def enter_world(state: GameState, player: PlayerRecord) -> tuple[PlayerRecord, list[EventDraft]]:
    """Mark ``player`` online in their room and announce it (to the world too while it is
    not crowded: WORLD_ANNOUNCEMENTS_UP_TO; to the room while it is not:
    ROOM_ANNOUNCEMENTS_UP_TO)."""
    player = state.put_player(player.model_copy(update={"online": True}))
    name = player.name
    drafts = comings_and_goings(state, player.room, "arrive", f"{name} appears.", name)
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
    drafts = comings_and_goings(state, player.room, "depart", room_text, name, reason=reason)
    if state.online_count() < WORLD_ANNOUNCEMENTS_UP_TO:  # as many as heard the login
        data: dict[str, EventValue] = {"player": name, "reason": reason}
        drafts.append(EventDraft(WORLD_TOPIC, "logout", f"{name} has left the world.", name, data))
    return player, drafts
