"""Tab completion for the terminal client, from what the player last saw (no terminal needed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from gameserver.protocol import DIRECTIONS

from .view import RoomView

#: The default command set's names (``help`` lists them; see gameserver/commands/).
COMMANDS: tuple[str, ...] = (
    "look", "examine", "inventory", "time", "go", "home", "sethome", "take", "drop", "give",
    "say", "emote", "pose", "whisper", "shout", "who", "page", "ooc", "channel", "ignore",
    "unignore", "help", "quit", "setdesc", "nick", "unnick", "password",
)  # fmt: skip
ITEM_ARGS = frozenset({"take", "get", "examine", "x", "look", "l"})
CARRIED_ARGS = frozenset({"drop", "give"})
PLAYER_ARGS = frozenset({"whisper", "tell"})  # players here (whispers need them online)
#: Commands that reach a player anywhere: anyone the client has seen.
ANY_PLAYER_ARGS = frozenset({"page", "p", "ignore", "unignore"})
EXIT_ARGS = frozenset({"go", "walk"})


class GameCompleter(Completer):
    """Commands and exits first; then, by command: exits, items, carried items or players.

    ``view`` is called on every completion, so it always reflects the latest room snapshot.
    """

    def __init__(self, view: Callable[[], RoomView], commands: Iterable[str] = COMMANDS) -> None:
        self.view = view
        self.commands = list(commands)

    def candidates(self, line: str) -> list[str]:
        """What may complete the last word of ``line``."""
        room = self.view()
        words = line.split()
        finished = line.endswith(" ")
        if len(words) == 0 or (len(words) == 1 and not finished):
            return [*self.commands, *room.exits]
        command = words[0].lower()
        position = len(words) if finished else len(words) - 1  # index of the word completed
        if command in EXIT_ARGS:
            return list(room.exits)
        if command in ITEM_ARGS:
            return [*room.items, *room.players, *room.npcs, *room.inventory]
        if command in CARRIED_ARGS:
            if command == "give" and position >= 2:
                return ["to", *room.players]
            return list(room.inventory)
        if command in PLAYER_ARGS and position == 1:
            return list(room.players)
        if command in ANY_PLAYER_ARGS and position == 1:
            return [*room.players, *(name for name in room.known if name not in room.players)]
        return []

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        line = document.text_before_cursor
        words = line.split()
        first = len(words) == 0 or (len(words) == 1 and not line.endswith(" "))
        if first:
            prefix = line.lstrip()
        else:  # arguments may have several words ("brass lamp"): match all after the command
            rest = line.lstrip().split(None, 1)
            prefix = rest[1] if len(rest) > 1 else ""
        seen: set[str] = set()
        for candidate in self.candidates(line):
            for text, start in self._matches(candidate, prefix, line):
                if text not in seen:
                    seen.add(text)
                    yield Completion(text, start_position=-start, display_meta=self._meta(text))

    @staticmethod
    def _matches(candidate: str, prefix: str, line: str) -> Iterator[tuple[str, int]]:
        """(completion, how many characters before the cursor it replaces)."""
        if candidate.lower().startswith(prefix.lower()):
            yield candidate, len(prefix)
            return
        last = "" if line.endswith(" ") else line.split()[-1]
        if candidate.lower().startswith(last.lower()):
            yield candidate, len(last)

    def _meta(self, text: str) -> str:
        room = self.view()
        if text in room.exits or text in DIRECTIONS:
            return "exit"
        if text in room.items:
            return "item"
        if text in room.players:
            return "player"
        if text in room.inventory:
            return "carried"
        return "command" if text in self.commands else ""
