"""A flood of first logins (registrations, each an Argon2id hash) on a real server with one
worker: a player already logged in keeps being answered while the flood is still queued, and
every newcomer gets in."""

from __future__ import annotations

import asyncio

from serverkit import WAIT, StartServer, run

from client.session import GameSession

FLOOD = 30
LOOKS = 5


def test_logins_do_not_starve_play(start_server: StartServer, sqlite_url: str) -> None:
    server = start_server(sqlite_url, 1)

    async def scenario() -> tuple[int, list[bool]]:
        async with server.session() as alice:
            await alice.login("Alice", "alice-password")
            newcomers = [server.session() for _ in range(FLOOD)]
            done: list[bool] = []

            async def register(i: int, session: GameSession) -> None:
                reply = await session.login(f"Newcomer{i}", "newcomer-password")
                done.append(reply.created)

            flood = [asyncio.ensure_future(register(i, s)) for i, s in enumerate(newcomers)]
            try:
                # The front queues logins apart: wait until it holds a good part of the flood.
                loop = asyncio.get_running_loop()
                deadline = loop.time() + WAIT
                while (await alice.ping()).model_extra["logins_waiting"] < FLOOD // 3:
                    assert loop.time() < deadline, "the flood never queued up"
                for _ in range(LOOKS):
                    assert (await alice.act("look")).ok
                registered_when_played = len(done)
                await asyncio.wait_for(asyncio.gather(*flood), WAIT)
            finally:
                for session in newcomers:
                    await session.close()
            return registered_when_played, done

    registered_when_played, done = run(scenario())
    # Alice's looks went ahead of the queued logins, one login at most before each of them
    # (one worker, one login slot); queued in arrival order they would have waited for all.
    assert registered_when_played < FLOOD - LOOKS
    assert done == [True] * FLOOD
