"""Players behind a relay survive a SIGKILLed front and a SIGKILLed relay, under load.

A real front (SQLite store) with one worker, a relay in front of it (events and actions), five
players behind the relay in one room and a speaker, connected straight to the front, saying
things steadily. The front (and its worker) is killed and restarted on the same ports and store,
then the relay is: each time every player receives live events again within seconds, and the
clients' gap repair (catch-up through the relay) leaves each of them a contiguous run of the
room's events, those published while they were cut off included.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "game"))  # serverkit

from relaykit import LOCAL, upstream_of
from serverkit import WAIT, Server, read_state, run

from client.session import CatchupReply, GameSession, RequestRefused, ServerUnavailable
from gameserver.protocol import CatchupRequest
from gameserver.topics import room_topic

ROOM = "meadow"  # no NPC wanders there: every event in it is ours
TOPIC = room_topic(ROOM)
PLAYERS = 5
#: "Receiving events again within a few seconds" of the kill (restart included): generous.
RECOVERY_S = 15.0
#: The speaker's pace (a say every SAY_EVERY_S seconds): steady load, not synchronisation.
SAY_EVERY_S = 0.05
FAST = ("--rate", "1000", "--burst", "1000")


class Player(GameSession):
    """A session that records the room's events it got, and which seqs came by catch-up."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.seqs: list[int] = []
        self.fetched: set[int] = set()  # room seqs returned by a catch-up
        self.changed = asyncio.Event()

    def on_catch_up(self, request: CatchupRequest, reply: CatchupReply) -> None:
        if request.topic == TOPIC:
            self.fetched.update(e.seq for e in reply.events if e.seq > request.since_seq)

    async def collect(self) -> None:
        async for event in self:
            if event.topic == TOPIC:
                self.seqs.append(event.seq)
                self.changed.set()


class Servers:
    """Every front started; each killed (with its workers) by PID at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.url = f"sqlite:///{tmp_path / 'game.db'}"
        self.started: list[Server] = []
        self.killed: set[int] = set()

    def start(self, *binds: str) -> Server:
        log = self.tmp_path / f"serve{len(self.started)}.log"
        server = Server(self.url, log, 1, *FAST, *binds)
        self.started.append(server)
        return server

    def kill(self, server: Server) -> None:
        if id(server) not in self.killed:
            self.killed.add(id(server))
            server.kill_all()

    def kill_all(self) -> None:
        for server in self.started:
            self.kill(server)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    s = Servers(tmp_path)
    yield s
    s.kill_all()


def last_seq(url: str) -> int:
    return read_state(url, lambda s: s.last_seq(TOPIC))


async def until(players: list[Player], ok, timeout: float) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``ok(player)`` holds for every player; fails at the deadline."""
    deadline = time.monotonic() + timeout
    for p in players:
        while not ok(p):
            left = deadline - time.monotonic()
            assert left > 0, f"players never got there: {[p.seqs[-3:] for p in players]}"
            p.changed.clear()
            try:
                await asyncio.wait_for(p.changed.wait(), left)
            except TimeoutError:
                pass


def contiguous(seqs: list[int]) -> bool:
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_players_behind_relay_recover_from_killed_front_and_relay(servers: Servers, relay) -> None:
    front = servers.start()
    binds = ("--actions-bind", front.actions, "--updates-bind", front.updates)
    # The restarted front announces its key where the first did (a port it held already; the
    # port below --actions-bind would be a new one, perhaps taken by a reconnecting socket).
    assert front.key_endpoint is not None
    binds += ("--key-bind", front.key_endpoint)
    r = relay(front.updates, *upstream_of(front), "--actions-bind", LOCAL)
    said = 0  # says the speaker got a reply for

    async def speaker(stop: asyncio.Event) -> None:
        nonlocal said
        # Short tries: while the front is down the speaker just keeps trying.
        async with front.session(timeout=1.0, retries=0) as s:
            await s.login("Speaker", "speaker-password")
            assert (await s.act("southeast")).room == ROOM
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    if (await s.act(f"say line {n}")).ok:
                        said += 1
                except (ServerUnavailable, RequestRefused):
                    pass
                await asyncio.sleep(SAY_EVERY_S)

    async def scenario() -> dict[str, dict[str, float]]:
        nonlocal r
        players = [Player(r.actions, r.endpoint, timeout=1.0, retries=5) for _ in range(PLAYERS)]
        collectors = [asyncio.create_task(p.collect()) for p in players]
        stop = asyncio.Event()
        talking: asyncio.Task[None] | None = None
        report: dict[str, dict[str, float]] = {}
        try:
            for i, p in enumerate(players):
                await p.login(f"Player{i}", "player-password")
                assert (await p.act("southeast")).room == ROOM
            talking = asyncio.create_task(speaker(stop))
            await until(players, lambda p: len(p.seqs) >= 10, WAIT)

            async def fault(name: str, kill, restart) -> None:  # type: ignore[no-untyped-def]
                fetched = [len(p.fetched) for p in players]
                started = time.monotonic()
                await asyncio.to_thread(kill)
                before = await asyncio.to_thread(last_seq, servers.url)  # stored before it
                await asyncio.to_thread(restart)
                await until(players, lambda p: p.seqs[-1] > before, RECOVERY_S)
                recovered = time.monotonic() - started
                # Gap repair: everything up to the first live event after the restart arrived.
                await until(players, lambda p: p.seqs[-1] > before + 5, WAIT)
                for p in players:
                    assert contiguous(p.seqs), (name, p.seqs)
                repaired = [len(p.fetched) - n for p, n in zip(players, fetched, strict=True)]
                report[name] = {
                    "recovery_s": round(recovered, 2),
                    "seq_at_kill": before,
                    "min_repaired": min(repaired),
                    "max_repaired": max(repaired),
                }

            def restart_front() -> None:
                nonlocal front
                front = servers.start(*binds)
                assert (front.actions, front.updates, front.key_endpoint) == binds[1::2]

            def restart_relay() -> None:
                nonlocal r
                extra = (*upstream_of(front), "--actions-bind", r.actions)
                r = relay(front.updates, *extra, bind=r.endpoint)

            await fault("front", lambda: servers.kill(front), restart_front)
            await fault("relay", r.kill, restart_relay)
            assert report["relay"]["min_repaired"] > 0, report  # said while the relay was down

            stop.set()
            await talking
            final = await asyncio.to_thread(last_seq, servers.url)
            await until(players, lambda p: p.seqs[-1] >= final, WAIT)
            for p in players:
                assert contiguous(p.seqs) and p.seqs[-1] == final, p.seqs
                assert p.lost == 0
            report["total"] = {"events": final, "said": said, "per_player": len(players[0].seqs)}
            return report
        finally:
            stop.set()
            if talking is not None:
                await asyncio.gather(talking, return_exceptions=True)
            for t in collectors:
                t.cancel()
            await asyncio.gather(*collectors, return_exceptions=True)
            for p in players:
                await p.close()

    started = time.monotonic()
    report = run(scenario(), timeout=WAIT * 4)
    print(f"\n{report} in {time.monotonic() - started:.1f}s")
