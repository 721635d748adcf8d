"""The listening players of `crossroads bench players`: their update connections, in a
process of their own.

A listening client decodes every event of its world, its room and its private topic, and
tracks each topic's sequence (repairing gaps by catch-up). Fifty of them in the bench's own
loop, during the logins row, were 40 % of that process's CPU (py-spy): 3.8 s of CPU per 8 s
round against 0.98 s with none. The loop that times the players' actions was late by that
much, and the players' p99 (214-227 ms) counted the bench's lateness as the server's; with
no listeners it was 43-51 ms. A real client listens on its player's own machine.

So each listening player has a twin here: the same session, resumed through the server (as a
client does after a reconnect) on its own connections, with the same client library
(:class:`loadtest.bench_crowd.Crowd`). The bench tells the twin of each reply that took its
player to another room, and the twin follows it as the player's own core would
(:meth:`client.protocol.ClientCore.follow_outcome`): unsubscribe, subscribe, catch up. The
server's work is what it was with the listeners in the bench; the twins share the machine's
cores with it, like the fan-out row's subscribers and the logins row's newcomers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from loadtest.bench_child import ask_child_to_stop, start_child

if TYPE_CHECKING:
    from loadtest.bench_crowd import Crowd, Player


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
    """What the listeners took in: events delivered to their players, and moves of their
    players they followed."""

    events: int
    moves: int


class RemoteListeners:
    """The twins of listening players, in a child process; ready (every session resumed and
    following its topics) once built."""

    def __init__(self, listeners: Listeners) -> None:
        self._process, self._conn = start_child(_child, (listeners,), "listeners'")

    def moved(self, index: int, reply: object, marks: dict[str, int]) -> None:
        """Player ``index`` (of the sessions) was taken to another room by ``reply``."""
        self._conn.send(("moved", index, reply, marks))

    def heard(self) -> Heard:
        """The listeners' counts so far (asks the child)."""
        self._conn.send(("report",))
        if not self._conn.poll(10):
            raise RuntimeError("the listeners' process did not report")
        _, events, moves = self._conn.recv()
        return Heard(events, moves)

    def close(self) -> None:
        ask_child_to_stop(self._process, self._conn, 10)


def _child(listeners: Listeners, conn: Connection) -> None:
    # As in the bench's own process: a listener that falls behind logs each repaired gap, and
    # a spawned child starts with logging's defaults, so those lines went out among the
    # bench's progress. The table reports what the listeners heard.
    logging.getLogger("client").setLevel(logging.ERROR)
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
        stopped = asyncio.Event()
        moves = 0

        def on_commands() -> None:
            nonlocal moves
            # Read when the pipe is readable: a move is followed at once, with no polling.
            while conn.poll():
                try:
                    command = conn.recv()
                except (EOFError, OSError):
                    # The bench is gone (killed): stop. The pipe stays readable at its end,
                    # so staying would run this callback for ever, a core's worth of CPU.
                    stopped.set()
                    return
                if command[0] == "moved":
                    _, index, reply, marks = command
                    player = players[index]
                    player.core.follow_outcome(reply, marks, crowd.now())
                    crowd.flush(player)
                    moves += 1
                elif command[0] == "report":
                    conn.send(("heard", crowd.events, moves))
                else:  # stop
                    stopped.set()
                    return

        loop = asyncio.get_running_loop()
        loop.add_reader(conn.fileno(), on_commands)
        conn.send(("ready",))
        try:
            await stopped.wait()
        finally:
            loop.remove_reader(conn.fileno())
    finally:
        await crowd.close()


async def _resume_all(crowd: Crowd, listeners: Listeners) -> list[Player]:
    """A listening twin for each session, resumed (so following its topics)."""
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
