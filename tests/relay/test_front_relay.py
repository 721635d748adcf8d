"""A player behind a relay plays with one connected straight to the real front: events come
through the relay's XPUB, actions and catch-ups through its ROUTER↔DEALER proxy."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "game"))  # serverkit

from relaykit import LOCAL, upstream_of
from serverkit import WAIT, Server, run

from client.session import GameSession


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Server]:
    server = Server(f"sqlite:///{tmp_path / 'game.db'}", tmp_path / "serve.log", 1)
    yield server
    server.kill_all()


def kind(k: str, text: str = "") -> object:
    return lambda e: e.kind == k and text in e.text


def test_player_behind_relay_plays_with_direct_player(front: Server, relay) -> None:
    """The defaults: the relay learns the front's key from its announcement (first use,
    pinned) and serves its region with a key of its own, made on its first run."""
    r = relay(front.updates, *upstream_of(front), "--actions-bind", LOCAL, secure=True)
    assert r.actions is not None and r.key is not None
    assert "trusting" in (front.log_path.parent / "relay0.log").read_text()

    async def play() -> None:
        alice = GameSession(r.actions, r.endpoint, server_key=r.key)
        async with alice, front.session() as bob:
            await alice.login("Alice", "alice-password")
            await bob.login("Bob", "bob-password")
            await alice.wait_for(kind("arrive", "Bob appears"), WAIT)
            assert (await bob.act("say hello, Alice")).ok
            await alice.wait_for(kind("say", 'Bob says, "hello, Alice"'), WAIT)
            assert (await alice.act("say hi Bob")).ok
            await bob.wait_for(kind("say", 'Alice says, "hi Bob"'), WAIT)
            assert (await bob.act("whisper Alice psst")).ok
            whisper = await alice.wait_for(kind("whisper"), WAIT)  # fetched by catch-up
            assert whisper.topic == alice.private_topic

    run(play(), timeout=WAIT * 2)
    stats = r.stats()
    assert stats["actions_requests"] >= 3 and stats["actions_replies"] >= 3, stats
    assert stats["messages_in"] >= 2, stats


def test_actions_at_the_front_and_updates_from_a_relay_each_with_its_key(
    front: Server, relay
) -> None:
    """A player near a relay without its actions proxy: actions sealed with the front's key,
    updates with the relay's own (GameSession's updates_key; `play --updates-key-endpoint`)."""
    assert front.key_endpoint is not None
    r = relay(front.updates, "--upstream-key-endpoint", front.key_endpoint, secure=True)
    assert r.key is not None and r.key != front.key

    async def play() -> None:
        bob = GameSession(front.actions, r.endpoint, server_key=front.key, updates_key=r.key)
        async with bob, front.session() as alice:
            await bob.login("Bob", "bob-password")
            await alice.login("Alice", "alice-password")
            assert (await alice.act("say over two keys")).ok
            await bob.wait_for(kind("say", "over two keys"), WAIT)

    run(play(), timeout=WAIT * 2)


def test_relay_history_answers_catchups_locally(front: Server, relay) -> None:
    r = relay(front.updates, *upstream_of(front), "--actions-bind", LOCAL, "--history", "64")

    async def play() -> tuple[list[int], int]:
        async with GameSession(r.actions, r.endpoint) as alice, front.session() as bob:
            await alice.login("Alice", "alice-password")
            await bob.login("Bob", "bob-password")
            first = await alice.wait_for(kind("arrive", "Bob appears"), WAIT)
            for n in range(3):
                assert (await bob.act(f"say line {n}")).ok
            await alice.wait_for(kind("say", "line 2"), WAIT)
            before = (await r.astats())["catchups_local"]
            reply = await alice.catch_up(first.topic, first.seq)  # all held by the relay
            assert (await r.astats())["catchups_local"] == before + 1
            old = await alice.catch_up(first.topic, 0)  # older than the relay's history: upstream
            assert old.events and old.events[0].seq < first.seq
            return [e.seq for e in reply.events], first.seq

    seqs, after = run(play(), timeout=WAIT * 2)
    # The three lines, and anything else that happened in the room (the NPC wanders), in order.
    assert len(seqs) >= 3 and seqs == list(range(after + 1, after + 1 + len(seqs))), seqs
    assert r.stats()["catchups_forwarded"] >= 1


def test_secure_relay_between_a_secure_front_and_a_player(tmp_path: Path, relay) -> None:
    """CURVE on every hop: the relay dials the front with the front's key and serves the region
    with its own, announced for players to pin (crossroads keys init makes relay.key_secret)."""
    from client.known_hosts import KnownHosts, server_key
    from gameserver import keys_cli

    keys = tmp_path / "keys"
    assert keys_cli.main(["--keys-dir", str(keys), "init"]) == 0
    front = Server(
        f"sqlite:///{tmp_path / 'game.db'}",
        tmp_path / "serve.log",
        1,
        "--secure-players",  # the default, said explicitly
    )
    try:
        r = relay(
            front.updates,
            "--actions-upstream",
            front.actions,
            "--actions-bind",
            LOCAL,
            "--upstream-key",
            str(keys / "front.key"),
            "--key",
            str(keys / "relay.key_secret"),
            secure=True,
        )
        key_line = r.wait_for(r"^key (\S+) (\S+)")
        hosts = KnownHosts(tmp_path / "known_hosts")
        key = server_key(r.actions, known_hosts=hosts, key_endpoint=key_line[1])
        assert key == key_line[2].encode()

        async def play() -> None:
            async with GameSession(r.actions, r.endpoint, server_key=key) as alice:
                await alice.login("Alice", "alice-password")
                assert (await alice.act("say through two sealed hops")).ok
                await alice.wait_for(kind("say", "through two sealed hops"), WAIT)

        run(play(), timeout=WAIT * 2)
    finally:
        front.kill_all()
