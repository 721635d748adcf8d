"""The client's UI logic without a terminal: room parsing, styling, completion, toolbar."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from client.completion import GameCompleter
from client.hearing import Hearing
from client.terminal import history_path
from client.view import Formatter, RoomView, ToolbarState, english_split
from gameserver.protocol import Event

LOGIN = (
    "Welcome to Crossroads.\n\n"
    "The Crossroads\nFour roads meet here.\nIt is dawn.\n"
    "Exits: north, south, east, northeast.\n"
    "You see a brass lamp and a weathered signpost.\n"
    "Tobin the pedlar is here.\n"
    "Bob and Carol are here."
)
HELP = (
    "Commands (type 'help <command>' for details):\nLooking:\n"
    "  look       Look around, or at something.\nSystem:\n  quit       Leave the game."
)


def event(kind: str, text: str, actor: str | None = None, **data: str) -> Event:
    return Event(
        topic="room.crossroads", seq=1, kind=kind, text=text, actor=actor, data=data, ts=0.0
    )


@pytest.fixture
def room() -> RoomView:
    view = RoomView()
    assert view.update_from_text(LOGIN)
    return view


def test_room_description_is_parsed(room: RoomView) -> None:
    assert room.name == "The Crossroads"
    assert room.exits == ["north", "south", "east", "northeast"]
    assert room.items == ["brass lamp", "weathered signpost"]
    assert room.players == ["Bob", "Carol"]
    assert room.npcs == ["Tobin the pedlar"]
    assert not room.update_from_text("You take the brass lamp.")
    room.update_from_text("You are carrying a brass lamp and a silver coin.")
    assert room.inventory == ["brass lamp", "silver coin"]
    assert english_split("a, b and c") == ["a", "b", "c"]


def test_room_follows_events(room: RoomView) -> None:
    room.update_from_event(event("arrive", "Dan arrives.", "Dan", player="Dan"), "Alice")
    room.update_from_event(event("depart", "Bob leaves north.", "Bob", player="Bob"), "Alice")
    room.update_from_event(event("take", "Carol takes the brass lamp.", "Carol"), "Alice")
    assert room.players == ["Carol", "Dan"]
    assert room.items == ["weathered signpost"]


def test_styles_by_kind() -> None:
    fmt = Formatter()
    styled = fmt.reply(LOGIN)
    assert ("class:exit", "northeast") in styled
    assert ("class:item", "a brass lamp") in styled
    assert ("class:player", "Carol") in styled
    assert ("class:room.name", "The Crossroads\n") in styled
    assert Formatter.plain(styled) == LOGIN  # styling never changes the text
    assert fmt.reply("No such thing.", ok=False)[0][0] == "class:error"
    assert fmt.event(event("say", 'Bob says, "hi"'))[0][0] == "class:speech"
    assert fmt.event(event("whisper", "psst"))[0][0] == "class:whisper"
    assert fmt.event(event("login", "Bob has entered the world."))[0][0] == "class:system"
    helped = fmt.reply(HELP)
    assert ("class:help.command", "look      ") in helped
    assert ("class:help.section", "System:") in helped


def complete(completer: GameCompleter, line: str) -> list[tuple[str, int]]:
    found = completer.get_completions(Document(line), CompleteEvent())
    return [(c.text, c.start_position) for c in found]


def test_completion(room: RoomView) -> None:
    room.inventory = ["silver coin"]
    completer = GameCompleter(lambda: room)
    assert complete(completer, "go ") == [(e, 0) for e in room.exits]
    assert complete(completer, "go no") == [("north", -2), ("northeast", -2)]
    assert complete(completer, "nor") == [("north", -3), ("northeast", -3)]
    assert complete(completer, "wh") == [("whisper", -2), ("who", -2)]
    assert complete(completer, "take brass l") == [("brass lamp", -7)]
    assert complete(completer, "whisper C") == [("Carol", -1)]
    assert complete(completer, "drop ") == [("silver coin", 0)]
    assert complete(completer, "give coin to B") == [("Bob", -1)]
    assert complete(completer, "say hel") == []


def test_toolbar_and_history_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bar = ToolbarState("connected", "The Crossroads", ["Bob"], 12.3)
    assert bar.text() == " connected  room: The Crossroads | here: Bob | rtt: 12 ms"
    bar.state, bar.players, bar.rtt_ms = "reconnecting...", [], None
    assert bar.text().startswith(" reconnecting... ") and "here: nobody | rtt: -" in bar.text()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert history_path("Alice") == tmp_path / "crossroads" / "history-alice"


def test_names_as_the_server_spells_them_and_npcs_that_move() -> None:
    view = RoomView()
    view.update_from_text(
        LOGIN.replace("Bob and Carol are here.", "alice, bob and Carol are here.")
    )
    assert view.players == ["alice", "bob", "Carol"]  # lower-case names are players too
    assert view.npcs == ["Tobin the pedlar"]
    view.update_from_event(event("npc_depart", "Tobin the pedlar leaves north."), "dave")
    assert view.npcs == []
    view.update_from_event(event("npc_arrive", "A grey cat arrives."), "dave")
    assert view.npcs == ["A grey cat"]
    view.update_from_event(event("npc_depart", "A grey cat wanders off."), "dave")
    assert view.npcs == []
    view.update_from_text(LOGIN.replace("Bob and Carol are here.", "alice is here."))
    assert view.players == ["alice"] and view.npcs == ["Tobin the pedlar"]
    completer = GameCompleter(lambda: view)
    found = completer.get_completions(Document("whisper "), CompleteEvent())
    assert [c.text for c in found] == ["alice"]


def test_a_crowded_room_names_its_players_and_counts_the_rest() -> None:
    """A description names at most 30 players, then counts the rest: the count is neither a
    player nor an NPC, and the styled text is the text."""
    crowded = LOGIN.replace("Bob and Carol are here.", "Bob, Carol and 4,970 others are here.")
    view = RoomView()
    view.update_from_text(crowded)
    assert view.players == ["Bob", "Carol"] and view.npcs == ["Tobin the pedlar"]
    styled = Formatter().reply(crowded)
    assert ("class:player", "Carol") in styled
    assert ("class:room.text", "4,970 others") in styled
    assert Formatter.plain(styled) == crowded
    view.update_from_text(LOGIN.replace("Bob and Carol are here.", "Bob and 1 other are here."))
    assert view.players == ["Bob"] and view.npcs == ["Tobin the pedlar"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["ignore", "channel", "who", "room"]))
def test_reply_parsers_take_any_text(text: str, shape: str) -> None:
    """Replies come from the network: whatever they say, parsing them never raises."""
    prefixes = {
        "ignore": "You are ignoring ",
        "channel": "Channels: ",
        "who": "2 player(s) online: ",
        "room": "Somewhere\nExits: ",
    }
    reply = prefixes[shape] + text
    hearing, view = Hearing(), RoomView()
    hearing.update_from_text(reply)
    view.update_from_text(reply)
    hearing.hides(event("channel", text, actor=text[:20] or None, channel=text[:5]))
    assert len(view.known) <= 500
