"""The logins row's newcomers: a crowd of first logins in a process of their own.

200 newcomers logging in at once are 200 clients, each on its own machine. Driven from the
bench's own event loop, their key pairs, CURVE handshakes and answers held up the loop that
times the existing players: a lag probe found that loop late by 300-530 ms in every half
second of the row, which the players' p99 then counted as the server's. So the newcomers run
in a child process (the same client library, :class:`loadtest.bench_crowd.Crowd`), which
creates them only when told to go, and reports each login's time and the time until the last
one was in. Like the fan-out row's subscribers (bench_subscribers), they still share the
machine's cores with the server and the bench.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from multiprocessing.connection import Connection

from loadtest.bench_child import start_child, stop_child

#: How often the bench's loop looks for the child's report.
POLL_S = 0.005


@dataclass(frozen=True)
class Newcomers:
    """Who logs in, and where: the child's whole task."""

    actions: str
    updates: str
    server_key: bytes | None
    names: list[str]
    password: str


@dataclass
class NewcomerReport:
    """What the child measured: each successful login's milliseconds, failures, and seconds
    from "go" until the last newcomer was answered."""

    logins_ms: list[float]
    failures: int
    all_s: float


class RemoteNewcomers:
    """``newcomers`` that log in (registering) from a child process, on ``run()``."""

    def __init__(self, newcomers: Newcomers) -> None:
        self._process, self._conn = start_child(_child, (newcomers,), "newcomers'")

    async def run(self) -> NewcomerReport:
        """Tell the child to go and wait (without blocking the loop) for its report."""
        self._conn.send(("go",))
        while not self._conn.poll():
            if not self._process.is_alive():
                raise RuntimeError("the newcomers' process ended without a report")
            await asyncio.sleep(POLL_S)
        _, logins_ms, failures, all_s = self._conn.recv()
        return NewcomerReport(logins_ms, failures, all_s)

    def close(self) -> None:
        stop_child(self._process, self._conn, 30)


def _child(newcomers: Newcomers, conn: Connection) -> None:
    asyncio.run(_log_in_all(newcomers, conn))


async def _log_in_all(newcomers: Newcomers, conn: Connection) -> None:
    from loadtest.bench_crowd import Crowd, Player

    crowd = Crowd(newcomers.actions, newcomers.updates, server_key=newcomers.server_key)
    password = newcomers.password
    try:
        conn.send(("ready",))
        await asyncio.to_thread(conn.recv)  # ("go",)
        start = crowd.now()
        logins_ms: list[float] = []
        failures = 0

        async def log_in(player: Player) -> None:
            nonlocal failures
            begin = crowd.now()
            call = await crowd.ask(
                player, lambda now: player.core.login(player.name, password, now)
            )
            if call.error is None:
                logins_ms.append((call.answered_at - begin) * 1000)
            else:
                failures += 1

        # Created on "go", as newcomers arrive: their connections are part of logging in. They
        # follow their topics as a player's client does after its login (the catch-ups of the
        # world, the room and the private topic), though nothing reads the events here.
        await asyncio.gather(
            *(log_in(crowd.add_player(name, follow=True)) for name in newcomers.names)
        )
        conn.send(("done", logins_ms, failures, crowd.now() - start))
    finally:
        await crowd.close()
