"""The command system: parsing, lookup, suggestions, and help taken from docstrings."""

from __future__ import annotations

import inspect

import pytest
from gamekit import Game

from gameserver.commands import Command, CommandError, CommandSet, default_commands, split_command
from gameserver.commands.items import Take
from gameserver.protocol import Reply
from gameserver.world import DIRECTIONS


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  LOOK  ", ("look", "")),
        ("take the brass lamp", ("take", "the brass lamp")),
        ("'hello there", ("'", "hello there")),
        (":waves happily", (":", "waves happily")),
        ("", ("", "")),
    ],
)
def test_split_command(line: str, expected: tuple[str, str]) -> None:
    assert split_command(line) == expected


def test_lookup_by_key_alias_and_unique_prefix() -> None:
    commands = default_commands()
    assert commands.find("take") is commands.find("get") is Take
    assert commands.find("inv") is commands.find("i") is commands.find("INVENTORY")
    assert commands.find("exa") is commands.find("x")
    assert commands.find("ne") is not None and commands.find("ne").key == "northeast"
    assert commands.find("s") is not None and commands.find("s").key == "south"
    assert commands.find("sh") is None  # too short to be a prefix


def test_near_misses_get_suggestions() -> None:
    commands = default_commands()
    assert commands.suggest("tkae") == "take"
    assert commands.suggest("invetory") == "inventory"
    assert commands.suggest("xyzzy") is None
    with pytest.raises(CommandError, match="Did you mean 'whisper'"):
        commands.resolve("whipser bob hi", fallback=False)  # a player's nicks come after


def test_clashing_names_are_refused() -> None:
    class Grab(Command):
        """Grab."""

        key = "grab"
        aliases = ("get",)

    with pytest.raises(ValueError, match="both claim 'get'"):
        CommandSet([Take, Grab])


def test_every_command_is_documented() -> None:
    names = set()
    for command in default_commands():
        assert command.__doc__, command
        assert "Usage:" in command.help_text(), command.key
        names.update(command.names())
    required = {"look", "l", "go", "take", "get", "drop", "give", "inventory", "i", "examine", "x"}
    required |= {"say", "'", "emote", ":", "whisper", "tell", "shout", "who", "help", "quit"}
    required |= set(DIRECTIONS) | set(DIRECTIONS.values())
    assert required <= names


def test_help_text_comes_from_docstrings(game: Game) -> None:
    alice = game.login("Alice")
    assert alice.say_ok("help take") == f"take, get\n{inspect.cleandoc(Take.__doc__ or '')}"
    index = alice.say_ok("help")
    for command in default_commands():
        if command.listed:
            assert f"{command.key:<10} {command.summary()}" in index
    assert "Walk north" in alice.say_ok("help n")
    reply = alice.act("help tkae").reply
    assert isinstance(reply, Reply) and "Did you mean 'take'?" in reply.text


def test_unknown_commands_get_a_helpful_reply(game: Game) -> None:
    alice = game.login("Alice")
    reply = alice.act("tkae lamp").reply
    assert isinstance(reply, Reply) and not reply.ok
    assert reply.text == "Unknown command 'tkae'. Did you mean 'take'? Type 'help' for a list."
    reply = alice.act("xyzzy").reply
    assert isinstance(reply, Reply) and "Did you mean" not in reply.text
    reply = alice.act("take lmap").reply
    assert isinstance(reply, Reply) and "Did you mean 'lamp'?" in reply.text
