"""The interactive client, driven through prompt-toolkit's pipe input against a real front and
worker: speech shows up on the other player's screen, Tab completes exits, and the toolbar
follows the server going away and coming back (the session resumes, no new login)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clientservers import Servers
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from serverkit import run
from uikit import Player, until

from client.view import Formatter

FAST = {"timeout": 1.0, "retries": 0, "ping_interval": 0.3}


def completions(player: Player, line: str) -> list[str]:
    found = player.client.completer.get_completions(Document(line), CompleteEvent())
    return [c.text for c in found]


def toolbar(player: Player) -> str:
    return Formatter.plain(player.client.bottom_toolbar())


def test_two_players_talk_complete_and_survive_a_restart(servers: Servers, xdg: Path) -> None:
    server = servers.start()

    async def scenario() -> None:
        alice = Player(server.actions, server.updates, "Alice", xdg / "h-alice", **FAST)
        bob = Player(server.actions, server.updates, "Bob", xdg / "h-bob", **FAST)
        try:
            await alice.start()
            await bob.start()
            await alice.see("Bob appears.")

            # Speech typed at alice's prompt prints above bob's.
            alice.type("say hello\r")
            await bob.see('Alice says, "hello"')
            await alice.see('You say, "hello"')

            # Completion offers the room's exits, from the latest room snapshot.
            assert {"north", "east", "southwest"} <= set(completions(bob, "go "))
            assert "Alice" in completions(bob, "whisper A")
            bob.type("go ea\t")
            await until(lambda: bob.buffer() == "go east", "Tab to complete 'east'")
            bob.type("\r")
            await until(lambda: bob.client.view.name == "East Road", "bob in the east road")
            await alice.see("Bob leaves east.")
            assert completions(bob, "go ") == ["east", "west"]
            assert "room: East Road" in toolbar(bob) and "connected" in toolbar(bob)

            # The server goes away: the toolbar says so; it comes back: same session.
            token = bob.client.connection.session.token
            assert await asyncio.to_thread(server.stop) == 0
            await until(lambda: "reconnecting" in toolbar(bob), "'reconnecting' in the toolbar")
            await bob.see("the server does not answer")
            again = await asyncio.to_thread(servers.start)
            await until(lambda: " connected " in toolbar(bob), "'connected' again", 30)
            await bob.see("reconnected: the session resumed")
            assert bob.client.connection.session.token == token  # resumed, not a new login
            await until(lambda: " connected " in toolbar(alice), "alice back", 30)
            bob.type("say back again\r")
            await bob.see('You say, "back again"')
            alice.type("east\r")
            await alice.see("East Road")
            bob.type("say welcome\r")
            await alice.see('Bob says, "welcome"')
            assert again.process.poll() is None
        finally:
            await alice.stop()
            await bob.stop()
        assert (xdg / "h-bob").read_text().count("say back again") == 1  # history kept

    run(scenario(), timeout=90)
