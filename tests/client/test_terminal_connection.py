"""The client's Connection on a real server: a session the server no longer knows (expired,
ended) is replaced by a fresh login, with the remembered password."""

from __future__ import annotations

from clientservers import Servers
from serverkit import WAIT, run

from client.connection import CONNECTED, Connection


def test_expired_session_logs_in_again(servers: Servers) -> None:
    server = servers.start()

    async def scenario() -> None:
        changes: list[tuple[str, str]] = []
        key = server.key  # the front's, as a player's client learns it
        conn = Connection(
            server.actions, server.updates, "Dora", "dora-password", timeout=1.0, server_key=key
        )
        conn.on_change = lambda state, message: changes.append((state, message))
        try:
            await conn.login()
            old = conn.session.token
            assert old is not None
            async with server.session() as other:
                await other.resume(old)
                assert (await other.act("quit")).session_ended  # the server forgets the token
            reply = await conn.act("look")  # refused as unauthorized, then logged in again
            assert reply.ok and "The Crossroads" in reply.text
            assert conn.state == CONNECTED and conn.session.token not in (None, old)
            assert (CONNECTED, "reconnected: logged in again") in changes
        finally:
            await conn.close()

    run(scenario(), timeout=WAIT)
