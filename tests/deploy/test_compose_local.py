"""The real docker-compose.yml, run by `crossroads compose-local` as local processes: two players
(one on the front, one behind relay-nz) play together, and play goes on after a worker is
SIGKILLed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from deploykit import WAIT, ComposeLocal, chat, learn_key, meet, wait_workers
from prockit import alive
from serverkit import run

from client.session import GameSession


def test_compose_stack_plays_through_relay_and_survives_worker_kill(
    compose: ComposeLocal, tmp_path: Path
) -> None:
    status = compose.wait_ready()
    assert set(status["services"]) == {"redis", "front", "worker", "relay-eu", "relay-nz"}
    assert len(compose.pids("worker")) == 3
    front_actions, front_updates = compose.endpoint("front", 7301), compose.endpoint("front", 7302)
    nz_actions, nz_updates = compose.endpoint("relay-nz", 7311), compose.endpoint("relay-nz", 7312)
    # Secure by default: every player port is CURVE; keys learnt on first use and pinned.
    hosts = tmp_path / "known_hosts"
    front_key = learn_key(front_actions, compose.endpoint("front", 7300), hosts)
    nz_key = learn_key(nz_actions, compose.endpoint("relay-nz", 7310), hosts)
    assert nz_key != front_key  # the relay serves its region with its own key
    wait_workers(front_actions, 3, server_key=front_key)
    victim = compose.pids("worker")[0]

    async def play() -> None:
        async with (
            GameSession(nz_actions, nz_updates, server_key=nz_key) as alice,
            GameSession(front_actions, front_updates, server_key=front_key) as bob,
        ):
            await meet(alice, bob)
            os.kill(victim, signal.SIGKILL)  # one replica dies mid-game
            for n in range(4):  # enough actions that the dead worker's turn comes up
                await chat(alice, bob, f"still here {n}")

    run(play(), timeout=WAIT * 3)
    compose.wait_for(rf"^exited worker pid {victim} ", WAIT)
    assert not alive(victim)
    wait_workers(front_actions, 2, server_key=front_key)  # the front noticed the missing heartbeats
    assert all(alive(pid) for pid in compose.pids("worker")[1:])
