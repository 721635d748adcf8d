"""What the player chose not to hear: ignored players and channels left.

Speech reaches a room or the whole world as one published event, so the server cannot leave
out one listener; the client hides it. What it hides follows the server's own record: the
replies to ``ignore`` and ``channel`` (asked once after logging in, and whenever the player
changes them), parsed here with no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gameserver.protocol import Event

from .view import english_split

#: Event kinds that carry someone's words, hidden when that someone is ignored.
SPOKEN = frozenset({"say", "emote", "shout", "channel", "whisper", "page"})
_IGNORING = re.compile(r"^You are ignoring (.+)\.$")
_IGNORE = re.compile(r"^You ignore (\S+)\.$")
_UNIGNORE = re.compile(r"^You no longer ignore (\S+)\.$")
_CHANNELS = re.compile(r"^Channels: (.+)\.$")
_CHANNEL_ENTRY = re.compile(r"^(\S+) \((joined|left)\)$")
_JOIN_LEAVE = re.compile(r"^You (join|leave) the (\S+) channel\.$")
#: The commands whose replies say what is hidden, run quietly after logging in.
SYNC_COMMANDS = ("ignore", "channel")


@dataclass
class Hearing:
    ignoring: set[str] = field(default_factory=set)  # lower-case names
    left_channels: set[str] = field(default_factory=set)

    def hides(self, event: Event) -> bool:
        if event.kind == "channel" and event.data.get("channel") in self.left_channels:
            return True
        actor = (event.actor or "").lower()
        return event.kind in SPOKEN and actor in self.ignoring

    def update_from_text(self, text: str) -> None:
        """Take in a reply; replies that say nothing about hearing change nothing."""
        if text == "You are ignoring nobody.":
            self.ignoring = set()
        elif match := _IGNORING.match(text):
            self.ignoring = {name.lower() for name in english_split(match[1])}
        elif match := _IGNORE.match(text):
            self.ignoring.add(match[1].lower())
        elif match := _UNIGNORE.match(text):
            self.ignoring.discard(match[1].lower())
        elif match := _JOIN_LEAVE.match(text):
            if match[1] == "leave":
                self.left_channels.add(match[2])
            else:
                self.left_channels.discard(match[2])
        elif match := _CHANNELS.match(text):
            entries = [_CHANNEL_ENTRY.match(part) for part in english_split(match[1])]
            self.left_channels = {e[1] for e in entries if e is not None and e[2] == "left"}
