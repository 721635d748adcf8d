"""What a player hits first, through prompt-toolkit's pipe input against a real server: a
pasted page of text, Ctrl-C, names as the server spells them, a double login."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clientservers import Servers
from prompt_toolkit.application import create_app_session
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from serverkit import run
from uikit import Player, until

from client.connection import TAKEN_OVER, Connection, TakenOver
from client.terminal import ask_masked
from client.view import Formatter

FAST = {"timeout": 1.0, "retries": 0, "ping_interval": 0.3}


def test_a_long_line_is_refused_and_the_client_keeps_working_then_ctrl_c_is_clean(
    servers: Servers, xdg: Path
) -> None:
    server = servers.start()

    async def scenario() -> None:
        alice = Player(server.actions, server.updates, "alice", xdg / "h-alice", **FAST)
        try:
            await alice.start()
            alice.type("say " + "x" * 10_000 + "\r")
            await alice.see("That line is 10004 characters long; the longest line is 500.")
            descriptions = alice.screen.text().count("Exits: ")
            alice.type("look\r")
            await until(lambda: alice.screen.text().count("Exits: ") > descriptions, "look")
            # A pasted tab (bracketed paste, as terminals send it) is a space, not a refusal.
            alice.type("\x1b[200~say tab\there\x1b[201~\r")
            await alice.see('You say, "tab here"')
            alice.type("\x03")  # Ctrl-C: leave quietly
            assert alice.task is not None
            await asyncio.wait_for(alice.task, 30)  # no exception escapes
            await alice.see("Goodbye, alice.")
            assert "Traceback" not in alice.screen.text()
            assert alice.client.finished
        finally:
            await alice.stop()

    run(scenario(), timeout=90)


def test_here_and_tab_use_the_names_the_server_sends(servers: Servers, xdg: Path) -> None:
    server = servers.start()

    async def scenario() -> None:
        names = ("alice", "bob", "carol")
        players = [Player(server.actions, server.updates, n, xdg / f"h-{n}", **FAST) for n in names]
        alice, bob, carol = players
        try:
            for player in players:
                await player.start()
            await alice.see("carol appears.")
            assert "here: bob, carol |" in toolbar(alice)
            # carol learnt of the others from the room description ("alice and bob are here.")
            assert "here: alice, bob |" in toolbar(carol)
            assert completions(carol, "whisper ") == ["alice", "bob"]
            carol.type("whisper b\t")
            await until(lambda: carol.buffer() == "whisper bob", "Tab to complete 'bob'")
            carol.type(" psst\r")
            await bob.see('carol whispers to you, "psst"')
            bob.type("quit\r")
            await until(lambda: "here: carol |" in toolbar(alice), "bob gone from the toolbar")
            assert completions(alice, "whisper ") == ["carol"]
        finally:
            for player in players:
                await player.stop()

    run(scenario(), timeout=90)


def completions(player: Player, line: str) -> list[str]:
    found = player.client.completer.get_completions(Document(line), CompleteEvent())
    return [c.text for c in found]


def toolbar(player: Player) -> str:
    return Formatter.plain(player.client.bottom_toolbar())


def test_a_bad_name_or_short_password_is_explained_without_the_password(
    servers: Servers, xdg: Path
) -> None:
    server = servers.start()

    async def attempt(name: str, password: str) -> str:
        player = Player(server.actions, server.updates, name, xdg / "h", **FAST)
        player.client.connection._password = password
        try:
            with create_app_session(input=player.pipe, output=player.output):
                assert not await player.client.start()
        finally:
            await player.client.connection.close()
            player._pipe_cm.__exit__(None, None, None)
        return player.screen.text()

    async def scenario() -> None:
        bad_name = await attempt("9lives", "fine-password-77")
        assert "login refused: a name is 2 to 20 letters" in bad_name
        assert "fine-password-77" not in bad_name and "Traceback" not in bad_name
        short = await attempt("erin", "zq7")
        assert "login refused: a password is 4 to 128 characters" in short
        assert "zq7" not in short and "Traceback" not in short

    run(scenario(), timeout=60)


def test_a_double_login_stops_the_client_that_lost_the_session(servers: Servers, xdg: Path) -> None:
    server = servers.start()

    async def scenario() -> None:
        first = Player(server.actions, server.updates, "alice", xdg / "h1", **FAST)
        second = Player(server.actions, server.updates, "alice", xdg / "h2", **FAST)
        try:
            await first.start()
            await second.start()
            # The first client is told, and stops without logging in again.
            await first.see("This account logged in elsewhere, so this client stops.")
            assert first.task is not None
            await asyncio.wait_for(first.task, 30)
            assert first.client.finished and "Goodbye" not in first.screen.text()
            token = second.client.connection.session.token
            second.type("say still mine\r")
            await second.see('You say, "still mine"')
            assert second.client.connection.session.token == token
        finally:
            await first.stop()
            await second.stop()

    run(scenario(), timeout=90)


def test_a_command_after_losing_the_session_says_why(servers: Servers) -> None:
    """The same through a command: the session is gone before its notice was read."""
    server = servers.start()

    ends = (server.actions, server.updates)

    async def scenario() -> None:
        first = Connection(*ends, "bob", "bob-password", server_key=server.key, **FAST)
        second = Connection(*ends, "bob", "bob-password", server_key=server.key, **FAST)
        try:
            await first.login()
            await second.login()
            try:
                await first.act("look")
            except TakenOver as exc:
                assert str(exc) == TAKEN_OVER
            else:
                raise AssertionError("the first connection went on acting")
            reply = await second.act("look")  # not taken back
            assert reply.ok
        finally:
            await first.close()
            await second.close()

    run(scenario(), timeout=60)


def test_registration_confirms_the_password_and_a_wrong_one_gets_another_try(
    servers: Servers, xdg: Path
) -> None:
    server = servers.start()

    asked: list[str] = []

    async def ask(question: str) -> str | None:
        asked.append(question)
        return await ask_masked(question)

    async def answer(player: Player, question: str, keys: str) -> None:
        await until(lambda: bool(asked) and asked[-1] == question, question)
        asked.clear()
        player.type(keys)

    async def scenario() -> None:
        erin = Player(
            server.actions, server.updates, "erin", xdg / "h", password="first-pw", ask=ask
        )
        starting = asyncio.create_task(erin.start())
        await erin.see("There is no account called erin yet: making one.")
        await answer(erin, "Type the password again to confirm: ", "frist-pw\r")
        await erin.see("The two passwords differ; choose one again.")
        await answer(erin, "New password for erin: ", "erin-pw-1\r")
        await answer(erin, "Type the password again to confirm: ", "erin-pw-1\r")
        await starting
        await erin.see("Account erin created. Welcome!")
        # `password`, typed at the prompt, asks masked and never reaches the server as text.
        erin.type("password\r")
        await answer(erin, "Current password: ", "erin-pw-1\r")
        await answer(erin, "New password: ", "erin-pw-2\r")
        await answer(erin, "New password again: ", "erin-pw-2\r")
        await erin.see("Password changed.")
        erin.type("say still here\r")
        await erin.see('You say, "still here"')  # the session carries on
        await erin.stop()
        seen = erin.screen.text() + (xdg / "h").read_text()  # the screen and the history
        assert not any(pw in seen for pw in ("first-pw", "frist-pw", "erin-pw-1", "erin-pw-2"))

        again = Player(
            server.actions, server.updates, "erin", xdg / "h2", password="erin-pw-1", ask=ask
        )
        starting = asyncio.create_task(again.start())
        await again.see("Wrong password; try again.")
        await answer(again, "Password for erin: ", "erin-pw-2\r")
        await starting
        assert "created" not in again.screen.text()
        await again.stop()

    run(scenario(), timeout=90)


def test_ignored_players_and_left_channels_stay_quiet_across_logins(
    servers: Servers, xdg: Path
) -> None:
    server = servers.start()

    async def scenario() -> None:
        alice = Player(server.actions, server.updates, "alice", xdg / "ha", **FAST)
        bob = Player(server.actions, server.updates, "bob", xdg / "hb", **FAST)
        carol = Player(server.actions, server.updates, "carol", xdg / "hc", **FAST)
        try:
            for player in (alice, bob, carol):
                await player.start()
            bob.type("north\r")
            await bob.see("North Road")
            # Tab completes a player in another room for the commands that reach anyone.
            assert completions(alice, "page ") == ["carol", "bob"]
            alice.type("page b\t")
            await until(lambda: alice.buffer() == "page bob", "Tab to complete 'bob'")
            alice.type(" up here?\r")
            await bob.see('alice pages you, "up here?"')

            bob.type("ignore carol\r")
            await bob.see("You ignore carol.")
            bob.type("channel leave ooc\r")
            await bob.see("You leave the ooc channel.")
            carol.type("shout carol shouting\r")
            carol.type("ooc carol on ooc\r")
            await alice.see("[ooc] carol: carol on ooc")
            # The world topic is in order: once bob sees this, carol's two came before it.
            alice.type("shout alice shouting\r")
            await bob.see('alice shouts, "alice shouting"')
            await bob.stop()
            screen = bob.screen.text()
            assert "carol shouting" not in screen and "carol on ooc" not in screen

            # A new login learns both from the server before showing anything.
            again = Player(server.actions, server.updates, "bob", xdg / "hb2", **FAST)
            await again.start()
            assert again.client.hearing.ignoring == {"carol"}
            assert again.client.hearing.left_channels == {"ooc"}
            carol.type("shout once more\r")
            carol.type("ooc more ooc\r")
            await alice.see("[ooc] carol: more ooc")
            alice.type("shout alice again\r")
            await again.see('alice shouts, "alice again"')
            await again.stop()
            assert "once more" not in again.screen.text()
            assert "more ooc" not in again.screen.text()
        finally:
            for player in (alice, bob, carol):
                await player.stop()

    run(scenario(), timeout=120)
