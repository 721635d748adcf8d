"""Restarting the whole server (front + workers): state survives, and a graceful shutdown
under load loses no action (in-flight ones finish; refused ones succeed once when resent)."""

from __future__ import annotations

import asyncio

from prockit import alive
from serverkit import WAIT, StartServer, read_state, run

from client.session import GameSession, RequestRefused, ServerUnavailable
from gameserver.store.records import player_location
from gameserver.topics import room_topic

ROOM = "meadow"  # no NPC wanders there, so every event in it is one of ours


def test_restart_keeps_players_rooms_and_items(start_server: StartServer, sqlite_url: str) -> None:
    first = start_server(sqlite_url, 2)

    async def before() -> tuple[str, int]:
        async with first.session() as alice, first.session() as bob:
            login = await alice.login("Alice", "alice-password")
            assert (await alice.act("take lamp")).ok
            assert (await alice.act("north")).room == "north_road"
            await bob.login("Bob", "bob-password")
            for step in ("north", "north"):
                await bob.act(step)
            assert (await bob.act("take coin")).ok
            said = await alice.act("say before the restart")
            assert said.ok
            event = await alice.wait_for(lambda e: e.kind == "say", WAIT)
            return login.token, event.seq

    token, seq_before = run(before())
    assert first.stop() == 0
    first.wait_for(r"^stopped")
    assert not any(alive(pid) for pid in first.worker_pids)

    second = start_server(sqlite_url, 2)

    async def after() -> None:
        async with second.session() as alice, second.session() as bob:
            resumed = await alice.resume(token)  # the session outlived the server
            assert resumed.player == "Alice" and resumed.room == "north_road"
            assert "brass lamp" in (await alice.act("inventory")).text
            again = await bob.login("Bob", "bob-password")
            assert again.room == "market_square" and not again.created
            assert "silver coin" in (await bob.act("inventory")).text
            await alice.act("say after the restart")
            event = await alice.wait_for(lambda e: e.kind == "say", WAIT)
            assert event.seq == seq_before + 1  # numbering goes on, nothing reused

    run(after())

    def where(state):  # type: ignore[no-untyped-def]
        return state.item_location("lamp"), state.item_location("coin")

    assert read_state(sqlite_url, where) == (player_location("alice"), player_location("bob"))


def test_graceful_shutdown_loses_no_action(start_server: StartServer, sqlite_url: str) -> None:
    fast = ("--rate", "10000", "--burst", "10000", "--drain-timeout", "10")
    first = start_server(sqlite_url, 2, *fast)
    names = ["Ann", "Ben", "Cat"]
    done: list[str] = []  # texts whose action got a reply
    unanswered: dict[str, tuple[str, str]] = {}  # name -> (action id, text) to resend
    tokens: dict[str, str] = {}
    enough = asyncio.Event()

    async def player(session: GameSession, name: str) -> None:
        for i in range(10_000):
            action_id, text = session.new_action_id(), f"say {name}-{i}"
            try:
                reply = await session.act(text, action_id=action_id)
            except (RequestRefused, ServerUnavailable):
                unanswered[name] = (action_id, text)  # the server went away meanwhile
                return
            assert reply.ok
            done.append(text)
            if len(done) >= 30:
                enough.set()

    async def load() -> int:
        sessions = [first.session(timeout=1.0, retries=1, busy_budget=0.5) for _ in names]
        try:
            for session, name in zip(sessions, names, strict=True):
                tokens[name] = (await session.login(name, "password")).token
                await session.act("southeast")
            seq = read_state(sqlite_url, lambda s: s.last_seq(room_topic(ROOM)))
            players = [
                asyncio.create_task(player(s, n)) for s, n in zip(sessions, names, strict=True)
            ]
            await asyncio.wait_for(enough.wait(), WAIT)
            code = await asyncio.to_thread(first.stop)  # SIGTERM in the middle of the load
            assert code == 0
            await asyncio.gather(*players)
            return seq
        finally:
            for session in sessions:
                await session.close()

    seq_before = run(load())
    assert set(unanswered) == set(names)
    second = start_server(sqlite_url, 2, *fast)

    async def resend() -> None:
        for name, (action_id, text) in unanswered.items():
            async with second.session() as session:
                await session.resume(tokens[name])
                reply = await session.act(text, action_id=action_id)
                assert reply.ok and reply.action_id == action_id

    run(resend())
    applied = read_state(sqlite_url, lambda s: s.last_seq(room_topic(ROOM))) - seq_before
    assert applied == len(done) + len(unanswered)  # each action exactly once
