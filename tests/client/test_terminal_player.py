"""What a player hits first, through prompt-toolkit's pipe input against a real server: a
pasted page of text, Ctrl-C, names as the server spells them, a double login."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clientservers import Servers
from serverkit import run
from uikit import Player, until

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
