"""The listening players of `crossroads bench players`: logged-in players that follow their
topics on an update connection, in a process of their own.

A listening client decodes every event of its world, its room and its private topic, and
tracks each topic's sequence (repairing gaps by catch-up). Fifty of them in the bench's own
loop, during the logins row, were 40 % of that process's CPU (py-spy): 3.8 s of CPU per 8 s
round against 0.98 s with none. The loop that times the acting players was late by that much,
and the players' p99 (214-227 ms) counted the bench's lateness as the server's; with no
listeners it was 43-51 ms. A real listening client runs on its player's own machine.

So the listeners are players of their own, each logged in (its session resumed through the
server, as a client does after a reconnect) and idle in the start room, driven by the same
client library (:class:`loadtest.bench_crowd.Crowd`) in a child process. The server's work for
them is what it was: one update connection each, the same topics, every room event of the
start room sent to each. They share the machine's cores with the server and the bench, like the
fan-out row's subscribers (bench_subscribers) and the logins row's newcomers (bench_newcomers).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from loadtest.bench_child import start_child, stop_child

if TYPE_CHECKING:
    from loadtest.bench_crowd import Crowd, Player

#: How often the child looks for a command from the bench while its players listen.
POLL_S = 0.05


@dataclass(frozen=True)
class Listeners:
    """Whom the child resumes, and where: its whole task."""

    actions: str
    updates: str
    server_key: bytes | None
    #: (name, session token) of each listening player, registered by the bench.
    sessions: list[tuple[str, str]]


@dataclass
class Heard:
    """What the listeners took in: events delivered to their players, and publications the
    client discarded as malformed."""

    events: int
    discarded: int


class RemoteListeners:
    """Players that listen from a child process; ready (every session resumed) once built."""

    def __init__(self, listeners: Listeners) -> None:
        self.count = len(listeners.sessions)
        self._process, self._conn = start_child(_child, (listeners,), "listeners'")

    def heard(self) -> Heard:
        """The listeners' counts so far (asks the child; it answers between its reads)."""
        self._conn.send(("report",))
        if not self._conn.poll(10):
            raise RuntimeError("the listeners' process did not report")
        _, events, discarded = self._conn.recv()
        return Heard(events, discarded)

    def close(self) -> None:
        try:
            self._conn.send(("stop",))
        except OSError:
            pass
        stop_child(self._process, self._conn, 10)


def _child(listeners: Listeners, conn: Connection) -> None:
    asyncio.run(_listen(listeners, conn))


async def _listen(listeners: Listeners, conn: Connection) -> None:
    from loadtest.bench_crowd import Crowd

    crowd = Crowd(listeners.actions, listeners.updates, server_key=listeners.server_key)
    try:
        try:
            players = await _resume_all(crowd, listeners)
        except Exception as exc:  # the bench's error line says why, in one line
            conn.send(("failed", f"{type(exc).__name__}: {exc}".splitlines()[0]))
            return
        conn.send(("ready",))
        while True:
            # Commands are few (a report per round, then stop): a slow poll keeps the reads first.
            while not conn.poll():
                await asyncio.sleep(POLL_S)
            command = conn.recv()
            if command[0] == "stop":
                return
            discarded = sum(p.core.discarded for p in players)
            conn.send(("heard", crowd.events, discarded))
    finally:
        await crowd.close()


async def _resume_all(crowd: Crowd, listeners: Listeners) -> list[Player]:
    """A listening player for each session, resumed (so following its topics)."""
    players = [crowd.add_player(name, listen=True) for name, _ in listeners.sessions]
    resumed = await asyncio.gather(
        *(
            crowd.ask(player, lambda now, p=player, t=token: p.core.resume(t, now))
            for player, (_, token) in zip(players, listeners.sessions, strict=True)
        )
    )
    for call in resumed:
        call.result()  # raises the failed resume's reason
    return players
