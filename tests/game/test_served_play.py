"""Two players on a real server (front + worker processes), on SQLite and on Redis: each sees
the other arrive, speak, take, whisper and walk; the store agrees with what they saw."""

from __future__ import annotations

import asyncio

from serverkit import WAIT, StartServer, read_state, run

from client.session import GameSession
from gameserver.protocol import Event
from gameserver.store.records import player_location, room_location
from gameserver.topics import room_topic


def kind(k: str, text: str = "") -> object:
    return lambda e: e.kind == k and text in e.text


async def play(alice: GameSession, bob: GameSession) -> dict[str, list[Event]]:
    await alice.login("Alice", "alice-password")
    await bob.login("Bob", "bob-password")
    await alice.wait_for(kind("arrive", "Bob appears"), WAIT)
    await alice.wait_for(kind("login", "Bob has entered"), WAIT)

    assert (await bob.act("say hello, Alice")).ok
    await alice.wait_for(kind("say", 'Bob says, "hello, Alice"'), WAIT)

    reply = await bob.act("take lamp")
    assert reply.ok and "brass lamp" in reply.text
    await alice.wait_for(kind("take", "Bob takes the brass lamp"), WAIT)
    assert not (await alice.act("take lamp")).ok  # it is gone: refused, nothing changes

    assert (await alice.act("whisper Bob meet me north")).ok
    whisper = await bob.wait_for(kind("whisper"), WAIT)
    assert whisper.text == 'Alice whispers to you, "meet me north"'
    assert whisper.topic == bob.private_topic  # fetched by catch-up, never broadcast

    # Room following: both walk north; each sees the other in the new room.
    assert (await bob.act("north")).room == "north_road"
    await alice.wait_for(kind("depart", "Bob leaves north"), WAIT)
    assert (await alice.act("north")).room == "north_road"
    arrival = await bob.wait_for(kind("arrive", "Alice arrives"), WAIT)
    assert arrival.topic == room_topic("north_road")
    assert (await bob.act("drop lamp")).ok
    await alice.wait_for(kind("drop", "Bob drops the brass lamp"), WAIT)
    assert (await alice.act("take lamp")).ok
    await bob.wait_for(kind("take", "Alice takes the brass lamp"), WAIT)

    seen = {"alice": alice.pending_events(), "bob": bob.pending_events()}
    assert alice.lost == bob.lost == 0
    return seen


def test_two_players_see_each_other(start_server: StartServer, store_url: str) -> None:
    server = start_server(store_url, 2)

    async def scenario() -> dict[str, list[Event]]:
        async with server.session() as alice, server.session() as bob:
            return await play(alice, bob)

    seen = run(scenario())
    # Nobody else ever saw the whisper: it exists only on Bob's private topic.
    assert not any(e.kind == "whisper" for e in seen["alice"])

    def check(state):  # type: ignore[no-untyped-def]
        alice, bob = state.player("alice"), state.player("bob")
        return (
            (alice.room, alice.online),
            (bob.room, bob.online),
            state.item_location("lamp"),
            state.items_in_room("crossroads"),
        )

    alice, bob, lamp, at_start = read_state(store_url, check)
    assert alice == ("north_road", True) and bob == ("north_road", True)
    assert lamp == player_location("alice")
    assert "lamp" not in at_start and lamp != room_location("crossroads")


def test_no_event_lost_on_entering_a_room(start_server: StartServer, sqlite_url: str) -> None:
    """Events right after an arrival are caught up even if the subscription lags behind."""
    server = start_server(sqlite_url, 2)

    async def scenario() -> None:
        async with server.session() as alice, server.session() as bob:
            await alice.login("Alice", "alice-password")
            await bob.login("Bob", "bob-password")
            await alice.act("east")
            # Bob arrives and Alice speaks at once: Bob's subscription to the room may not be
            # in place yet, so these come to him by catch-up from his arrival's seq.
            bob_move = asyncio.create_task(bob.act("east"))
            await alice.wait_for(kind("arrive", "Bob arrives"), WAIT)
            for i in range(5):
                await alice.act(f"say line {i}")
            assert (await bob_move).room == "east_road"
            for i in range(5):
                await bob.wait_for(kind("say", f'"line {i}"'), WAIT)
            assert bob.tracks[room_topic("east_road")].lost == 0

    run(scenario())
