"""The real docker-compose.yml, run by `crossroads compose-local` as local processes: two players
(one on the front, one behind relay-nz) play together, and play goes on after a worker is
SIGKILLed."""

from __future__ import annotations

import os
import signal
import time

from deploykit import ComposeLocal
from serverkit import WAIT, alive, run

from client.session import GameSession
from engine.patterns.lazy_pirate import RequestFailed
from gameserver.ping import ping


def kind(k: str, text: str = "") -> object:
    return lambda e: e.kind == k and text in e.text


def wait_workers(actions: str, count: int, timeout: float = WAIT) -> None:
    """Until the front reports ``count`` connected workers (deadline-bounded ping loop)."""
    deadline = time.monotonic() + timeout
    seen: object = None
    while time.monotonic() < deadline:
        try:
            seen = ping(actions, timeout=2.0).get("workers")
        except RequestFailed:
            seen = None
        if seen == count:
            return
        time.sleep(0.1)  # polling pace; the deadline bounds the wait
    raise AssertionError(f"front never reported {count} workers (last: {seen})")


def test_compose_stack_plays_through_relay_and_survives_worker_kill(
    compose: ComposeLocal,
) -> None:
    status = compose.wait_ready()
    assert set(status["services"]) == {"redis", "front", "worker", "relay-eu", "relay-nz"}
    assert len(compose.pids("worker")) == 3
    front_actions, front_updates = compose.endpoint("front", 7301), compose.endpoint("front", 7302)
    nz_actions, nz_updates = compose.endpoint("relay-nz", 7311), compose.endpoint("relay-nz", 7312)
    wait_workers(front_actions, 3)
    victim = compose.pids("worker")[0]

    async def play() -> None:
        async with (
            GameSession(nz_actions, nz_updates) as alice,
            GameSession(front_actions, front_updates) as bob,
        ):
            await alice.login("Alice", "alice-password")
            await bob.login("Bob", "bob-password")
            await alice.wait_for(kind("arrive", "Bob appears"), WAIT)
            assert (await bob.act("say hello, Alice")).ok
            await alice.wait_for(kind("say", 'Bob says, "hello, Alice"'), WAIT)
            assert (await alice.act("say hi Bob")).ok
            await bob.wait_for(kind("say", 'Alice says, "hi Bob"'), WAIT)

            os.kill(victim, signal.SIGKILL)  # one replica dies mid-game
            for n in range(4):  # enough actions that the dead worker's turn comes up
                assert (await bob.act(f"say still here {n}")).ok
                await alice.wait_for(kind("say", f"still here {n}"), WAIT)
                assert (await alice.act(f"say me too {n}")).ok
                await bob.wait_for(kind("say", f"me too {n}"), WAIT)

    run(play(), timeout=WAIT * 3)
    compose.wait_for(rf"^exited worker pid {victim} ", WAIT)
    assert not alive(victim)
    wait_workers(front_actions, 2)  # the front noticed the missing heartbeats
    assert all(alive(pid) for pid in compose.pids("worker")[1:])
