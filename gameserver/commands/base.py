"""What a command is, and how a typed line finds its command.

Evennia-style: a command is a small class with a ``key``, ``aliases``, a docstring that is its
in-game help, and ``func(ctx)`` holding the logic. One instance is made per invocation and
holds what was typed (``cmdstring``), the rest of the line (``args``) and the command set it was
found in (``cmdset``, which ``help`` lists).

Layering: this module knows the :class:`~gameserver.commands.context.Context` a command runs
in; the context knows nothing of commands.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Iterator
from typing import ClassVar

from .context import Context


class CommandError(Exception):
    """The game refuses the command; the message is shown to the player and nothing changes."""


class Command:
    """Base class of all commands; subclasses set ``key`` and write a docstring."""

    key: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    category: ClassVar[str] = "General"
    # Listed by `help` unless hidden (the ten direction commands are covered by `go`).
    listed: ClassVar[bool] = True
    # Changes nothing and emits nothing: run in a read-only store transaction, unrecorded
    # (see gameserver.rules). A read-only command that does emit is re-run as a normal one.
    read_only: ClassVar[bool] = False

    def __init__(self, cmdstring: str, args: str, cmdset: CommandSet | None = None) -> None:
        self.cmdstring = cmdstring
        self.args = args
        self.cmdset = cmdset if cmdset is not None else CommandSet(())

    def func(self, ctx: Context) -> None:
        raise NotImplementedError

    @classmethod
    def help_text(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "") or "No help is written for this command."

    @classmethod
    def summary(cls) -> str:
        return cls.help_text().splitlines()[0]

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return (cls.key, *cls.aliases)


def split_command(line: str) -> tuple[str, str]:
    """Split a line into command word and arguments. A leading punctuation mark is a word of
    its own, so ``'hello`` and ``:waves`` need no space."""
    line = line.strip()
    if not line:
        return "", ""
    if not line[0].isalnum():
        return line[0], line[1:].strip()
    word, _, rest = line.partition(" ")
    return word.lower(), rest.strip()


class CommandSet:
    """The commands available to players, looked up by key, alias or unique prefix."""

    MIN_PREFIX = 3

    def __init__(
        self, commands: Iterable[type[Command]], *, fallback: type[Command] | None = None
    ) -> None:
        # ``fallback`` gets the words no command claims (the player's own nicks, say); it
        # raises :meth:`unknown` for the ones it does not know either.
        self.fallback = fallback
        self._by_name: dict[str, type[Command]] = {}
        self._commands: list[type[Command]] = []
        for command in commands:
            if not command.key:
                raise ValueError(f"{command.__name__} has no key")
            for name in command.names():
                if name in self._by_name:
                    clash = self._by_name[name].__name__
                    raise ValueError(f"{command.__name__} and {clash} both claim {name!r}")
                self._by_name[name] = command
            self._commands.append(command)

    def __iter__(self) -> Iterator[type[Command]]:
        return iter(self._commands)

    def find(self, word: str) -> type[Command] | None:
        word = word.lower()
        if word in self._by_name:
            return self._by_name[word]
        if len(word) >= self.MIN_PREFIX:
            matches = {cmd for name, cmd in self._by_name.items() if name.startswith(word)}
            if len(matches) == 1:
                return matches.pop()
        return None

    def suggest(self, word: str) -> str | None:
        """The nearest known command name to a mistyped word, if any is close."""
        candidates = [name for name in self._by_name if len(name) > 1]
        close = difflib.get_close_matches(word.lower(), candidates, n=1, cutoff=0.6)
        return close[0] if close else None

    def unknown(self, word: str) -> CommandError:
        hint = self.suggest(word)
        tip = f" Did you mean '{hint}'?" if hint else ""
        return CommandError(f"Unknown command '{word}'.{tip} Type 'help' for a list.")

    def resolve(self, line: str, *, fallback: bool = True) -> Command:
        """The command instance for a typed line; raises :class:`CommandError` if none fits
        (words no command claims go to the fallback, unless ``fallback`` is False)."""
        word, args = split_command(line)
        if not word:
            raise CommandError("Say something? Type 'help' for a list of commands.")
        command = self.find(word)
        if command is None:
            if fallback and self.fallback is not None:
                return self.fallback(word, args, self)
            raise self.unknown(word)
        return command(word, args, self)
