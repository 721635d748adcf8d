"""What the terminal client shows, as plain testable classes (no terminal needed).

* :class:`RoomView` is what the player knows about the room: parsed from the room description
  the server sends (on login, look and every move) and kept up to date by room events.
* :class:`Formatter` turns replies and events into prompt-toolkit ``FormattedText``, styled by
  kind (room descriptions, speech, whispers, system messages, errors); ``plain`` gives the text.
* :class:`ToolbarState` is the bottom toolbar: connection state, room, players, round-trip time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.styles import Style

from gameserver.protocol import PLAYER_NAME_PATTERN, Event

ARTICLES = ("the ", "a ", "an ", "some ")
#: A player's name as the server allows it (whatever its case: the server keeps the spelling
#: typed at registration). NPC names have spaces ("Tobin the pedlar", "A grey cat"), and the
#: server lists each NPC on a line of its own and all players on one line.
_NAME = re.compile(PLAYER_NAME_PATTERN)
#: Players remembered for completing `page` and `ignore`.
MAX_KNOWN_PLAYERS = 500
_WHO = re.compile(r"^\d+ player\(s\) online: ")
#: How a description counts the players it does not name: "Ada, Bob and 4,970 others are
#: here." (gameserver.narration names at most 30).
_OTHERS = re.compile(r"^\d[\d,]* others?$")
_NPC_MOVES = re.compile(r"^(?P<npc>.+?) (?:leaves \w+|wanders off|arrives)\.$")

STYLE = Style.from_dict(
    {
        "room.name": "bold ansicyan",
        "room.text": "",
        "exit": "bold ansigreen",
        "item": "bold ansiyellow",
        "player": "bold ansimagenta",
        "npc": "ansimagenta",
        "speech": "ansiwhite bold",
        "whisper": "italic ansimagenta",
        "shout": "bold ansired",
        "system": "ansibrightblack",
        "event": "ansicyan",
        "error": "bold ansired",
        "reply": "",
        "help.title": "bold underline",
        "help.section": "bold ansicyan",
        "help.command": "bold ansigreen",
        "toolbar.ok": "bg:ansigreen ansiblack",
        "toolbar.warn": "bg:ansiyellow ansiblack",
        "toolbar.bad": "bg:ansired ansiwhite",
    }
)

#: Event kind -> style class.
EVENT_STYLES: dict[str, str] = {
    "say": "speech",
    "emote": "speech",
    "shout": "shout",
    "whisper": "whisper",
    "page": "whisper",
    "channel": "event",
    "login": "system",
    "logout": "system",
    "clock": "system",
    "session_replaced": "error",
}


def english_split(text: str) -> list[str]:
    """``"a, b and c"`` -> ``["a", "b", "c"]`` (the server's english_list, reversed)."""
    parts = [p.strip() for p in text.split(", ")]
    if parts and " and " in parts[-1]:
        parts[-1:] = parts[-1].rsplit(" and ", 1)
    return [p for p in parts if p]


def players_listed(who: list[str]) -> list[str] | None:
    """The names on a description's "... are here." line, without the count of those it does
    not name; None if the line is an NPC's ("Tobin the pedlar is here.")."""
    names = who[:-1] if len(who) > 1 and _OTHERS.match(who[-1]) else who
    return names if names and all(_NAME.match(name) for name in names) else None


def bare(name: str) -> str:
    """An item name without its article: ``"a brass lamp"`` -> ``"brass lamp"``."""
    lower = name.lower()
    for article in ARTICLES:
        if lower.startswith(article):
            return name[len(article) :]
    return name


@dataclass
class RoomView:
    """What the player last saw of the room."""

    name: str = ""
    exits: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    players: list[str] = field(default_factory=list)
    npcs: list[str] = field(default_factory=list)
    inventory: list[str] = field(default_factory=list)
    #: Players met anywhere (the room, `who`, logins): for commands that reach any player.
    known: list[str] = field(default_factory=list)

    def meet(self, names: list[str]) -> None:
        for name in names:
            if name not in self.known and _NAME.match(name):
                self.known.append(name)
        del self.known[:-MAX_KNOWN_PLAYERS]  # a busy world: the most recently met are kept

    @staticmethod
    def is_description(text: str) -> bool:
        lines = text.splitlines()
        return any(
            line.startswith("Exits: ") or line == "There are no obvious exits." for line in lines
        )

    def update_from_text(self, text: str) -> bool:
        """Take in a reply; returns True if it was a room description."""
        if text.startswith("You are carrying "):
            self.inventory = [bare(i) for i in english_split(text[17:].rstrip("."))]
        elif text == "You are empty-handed.":
            self.inventory = []
        elif _WHO.match(text):
            self.meet(re.findall(r"(\S+) \(", text.partition(": ")[2]))
        if not self.is_description(text):
            return False
        lines = text.split("\n\n")[-1].splitlines()  # a login reply starts with the welcome
        self.name = lines[0] if lines else ""
        self.exits, self.items, self.players, self.npcs = [], [], [], []
        for line in lines[1:]:
            if line.startswith("Exits: "):
                self.exits = [e.strip() for e in line[7:].rstrip(".").split(",")]
            elif line.startswith("You see ") and line.endswith("."):
                self.items = [bare(i) for i in english_split(line[8:-1])]
            elif line.endswith(" is here.") or line.endswith(" are here."):
                subject = line.rsplit(" is here.", 1)[0].rsplit(" are here.", 1)[0]
                names = players_listed(english_split(subject))
                if names is None:
                    self.npcs.append(subject)
                else:
                    self.players += names
        self.meet(self.players)
        return True

    def update_from_event(self, event: Event, me: str | None) -> None:
        """Keep players and items current between descriptions. (A room of more than 100 is
        not told who comes and goes: there the players are as the last description named.)"""
        player = event.data.get("player")
        if event.kind == "login" and isinstance(player, str) and player != me:
            self.meet([player])
        if not event.topic.startswith("room."):
            return
        if event.kind in ("npc_arrive", "npc_depart"):
            moved = _NPC_MOVES.match(event.text)
            if moved is not None:
                npc = moved["npc"]
                if event.kind == "npc_depart" and npc in self.npcs:
                    self.npcs.remove(npc)
                elif event.kind == "npc_arrive" and npc not in self.npcs:
                    self.npcs.append(npc)
            return
        player = event.data.get("player")
        if isinstance(player, str) and player != me:
            if event.kind == "arrive" and player not in self.players:
                self.players.append(player)
                self.meet([player])
            elif event.kind == "depart" and player in self.players:
                self.players.remove(player)
        match = re.match(r"^\S+ (takes|drops) the (.+)\.$", event.text)
        if match and event.actor != me:
            item = match[2]
            if match[1] == "takes" and item in self.items:
                self.items.remove(item)
            elif match[1] == "drops" and item not in self.items:
                self.items.append(item)


class Formatter:
    """Replies and events as styled text; ``FormattedText`` is a list of (style, text)."""

    def room(self, text: str) -> FormattedText:
        parts: list[tuple[str, str]] = []
        blocks = text.split("\n\n")
        if len(blocks) > 1:  # welcome text first (login)
            parts.append(("class:reply", "\n\n".join(blocks[:-1]) + "\n\n"))
        lines = blocks[-1].splitlines()
        for i, line in enumerate(lines):
            end = "\n" if i < len(lines) - 1 else ""
            if i == 0:
                parts.append(("class:room.name", line + end))
            elif line.startswith("Exits: "):
                parts.append(("class:room.text", "Exits: "))
                exits = [e.strip() for e in line[7:].rstrip(".").split(",")]
                for j, name in enumerate(exits):
                    parts.append(("class:exit", name))
                    parts.append(("class:room.text", ", " if j < len(exits) - 1 else "."))
                parts.append(("", end))
            elif line.startswith("You see ") and line.endswith("."):
                parts.append(("class:room.text", "You see "))
                parts += self._listed(english_split(line[8:-1]), "item")
                parts.append(("class:room.text", "." + end))
            elif line.endswith(" is here.") or line.endswith(" are here."):
                subject, verb = line.rsplit(" ", 2)[0], " ".join(line.rsplit(" ", 2)[1:])
                who = english_split(subject)
                names = players_listed(who)
                if names is None:
                    parts += self._listed(who, "npc")
                else:  # "and 4,970 others" is not a name
                    parts += self._listed(who, "player", counted=len(names) < len(who))
                parts.append(("class:room.text", f" {verb}{end}"))
            else:
                parts.append(("class:room.text", line + end))
        return FormattedText(parts)

    @staticmethod
    def _listed(names: list[str], style: str, *, counted: bool = False) -> list[tuple[str, str]]:
        """``names`` as an English list in ``style``; ``counted``: the last is a count of
        others, in the room's plain style."""
        out: list[tuple[str, str]] = []
        for i, name in enumerate(names):
            if i:
                out.append(("", " and " if i == len(names) - 1 else ", "))
            last_counted = counted and i == len(names) - 1
            out.append(("class:room.text" if last_counted else f"class:{style}", name))
        return out

    def help(self, text: str) -> FormattedText:
        parts: list[tuple[str, str]] = []
        for line in text.splitlines():
            if line.startswith("Commands"):
                parts.append(("class:help.title", line))
            elif line.endswith(":") and not line.startswith(" "):
                parts.append(("class:help.section", line))
            elif line.startswith("  "):
                key, _, summary = line.strip().partition(" ")
                parts += [("", "  "), ("class:help.command", f"{key:<10}"), ("", summary.strip())]
            else:
                parts.append(("", line))
            parts.append(("", "\n"))
        if parts:
            parts.pop()
        return FormattedText(parts)

    def reply(self, text: str, ok: bool = True) -> FormattedText:
        if not ok:
            return FormattedText([("class:error", text)])
        if RoomView.is_description(text):
            return self.room(text)
        if text.startswith("Commands (type 'help"):
            return self.help(text)
        return FormattedText([("class:reply", text)])

    def event(self, event: Event) -> FormattedText:
        return FormattedText([(f"class:{EVENT_STYLES.get(event.kind, 'event')}", event.text)])

    def system(self, text: str) -> FormattedText:
        return FormattedText([("class:system", f"* {text}")])

    def error(self, text: str) -> FormattedText:
        return FormattedText([("class:error", text)])

    @staticmethod
    def plain(text: FormattedText) -> str:
        return "".join(fragment[1] for fragment in text)


@dataclass
class ToolbarState:
    """The bottom toolbar's content."""

    state: str = "offline"  # connected / reconnecting... / offline
    room: str = ""
    players: list[str] = field(default_factory=list)
    rtt_ms: float | None = None

    def text(self) -> str:
        return self.fragments_text()

    def fragments(self) -> FormattedText:
        style = {"connected": "toolbar.ok", "offline": "toolbar.bad"}.get(
            self.state, "toolbar.warn"
        )
        here = ", ".join(self.players) if self.players else "nobody"
        rtt = f"{self.rtt_ms:.0f} ms" if self.rtt_ms is not None else "-"
        return FormattedText(
            [
                (f"class:{style}", f" {self.state} "),
                ("", f" room: {self.room or '?'} | here: {here} | rtt: {rtt}"),
            ]
        )

    def fragments_text(self) -> str:
        return Formatter.plain(self.fragments())
