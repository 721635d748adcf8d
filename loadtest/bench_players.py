"""`crossroads bench players`: the game as its players see it, against issue 12's targets.

Each row starts a fresh real ``crossroads serve`` (SQLite by default; ``--store redis`` starts
a real redis-server), brings its players in through the client library's protocol core, and
measures. For the front and for each worker it prints server CPU µs per action (from
/proc/PID/stat), with p50/p99 and errors; every figure is the median of ``--rounds`` rounds,
printed beside the figure the issue measured before ("now") and its target, with the ratio.

Rows:

* ``rate``: a fixed total of ``--rate`` actions/s spread over N players in one room (each N of
  ``--players``), the mix look 40 % / say 20 % / move 30 % / take-drop 10 % (or ``--action``).
* ``floor``: the rate rows' reference: a relay of the same shape that does no work (the bench
  to a front process to one of ``--workers`` worker processes, picked as the front picks, and
  back, plain asyncio over loopback TCP, at ``--rate`` messages/s), and the CPU each process
  spends per message: what the machine charges for the wake-ups alone (bench_floor).
* ``closed``: ``--closed-players`` players, each sending its next action when the last is
  answered.
* ``seq``: one player, sequential ``look`` round trips.
* ``fanout``: one ``say`` reaching ``--subscribers`` subscribers of the room: the time from
  sending it to its last arrival, and a concurrent ping's p99 while that happens (its CPU per
  action is per room event, measured over as many events sent with no pings going); with
  ``--fan-relays N`` the subscribers are behind N regional relays (bench_fanout).
* ``logins``: ``--logins`` simultaneous first logins (registering; from a child process, as
  other clients: bench_newcomers) while ``--closed-players`` existing players act at
  ``--rate``: the logins' times and the players' p99 meanwhile.

The players of the rate, closed and logins rows are registered directly in the store before
the row (the login code with a cheap hash: registering 5,000 players at a real hash's cost
would take minutes); logins through the server are measured by the ``logins`` row. In the
rate, closed and logins rows ``--listeners`` of the players also follow their topics on an
update connection, like a real client, from a child process (bench_listeners): a twin of each
listening player's session there follows the rooms its actions take it to, so the decoding does
not hold up the loop that times the actions. The acting sessions themselves follow nothing: a
catch-up per room entered is the twin's, as it is a real client's, and nobody's for a player
that does not listen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtest.bench_crowd import (
    BenchError,
    Crowd,
    Player,
    RedisServer,
    Server,
    act,
    server_key,
)
from loadtest.bench_fanout import ServerAndRelays, fan_out
from loadtest.bench_floor import FloorRelay
from loadtest.bench_listeners import Listeners, RemoteListeners
from loadtest.bench_newcomers import Newcomers, RemoteNewcomers
from loadtest.bench_players_cli import ROWS, add_arguments
from loadtest.bench_players_report import Round, Row, key_figures, table

MIX = (("look", 40), ("say", 20), ("move", 30), ("take", 10))
PASSWORD = "bench-password"


# -- setting a row up -----------------------------------------------------------------------------


def register(store_url: str, names: list[str], progress: Callable[[str], None]) -> list[Any]:
    """Log each name in once through the login code, on the store itself; the LoginReplies."""
    from gameserver.accounts import login
    from gameserver.passwords import PasswordPolicy
    from gameserver.store import open_store
    from gameserver.world import load_world

    world = load_world(None)
    # Argon2id at the cheapest costs it accepts: setup only, never a measured login.
    cheap = PasswordPolicy(memory_kib=8, time_cost=1, parallelism=1)
    replies = []
    with open_store(store_url) as store:
        for i, name in enumerate(names, 1):
            outcome = login(store, world, name, PASSWORD, passwords=cheap)
            if getattr(outcome.reply, "token", None) is None:
                raise BenchError(f"could not register {name}: {outcome.reply}")
            replies.append(outcome.reply)
            if i % 500 == 0:
                progress(f"registered {i:,}/{len(names):,} ")
    return replies


#: How long a player's first ping may wait for its connection (thousands handshake at once).
CONNECT_WAIT_S = 120.0
#: Players connected at once. Every handshake of the crowd runs in this one process, and the
#: front gives each connection HANDSHAKE_IVL (5 s) to finish: 5,000 dialled at once needed
#: more than that between them on this 2-core machine, so the late ones were closed, redialled,
#: and closed again (the 5,000-player row never got in). A wave of 500 is done in about a
#: second.
CONNECT_WAVE = 500


async def bring_in(crowd: Crowd, replies: list[Any]) -> list[Player]:
    """Players for registered sessions (each holds its token), each connected before the row
    measures anything: every player pings the front once, so that an online player's connection
    is made (and its CURVE handshake done) before it plays, else a row of 5,000 would time those
    handshakes as actions."""
    players: list[Player] = []
    connected = 0

    async def connect(player: Player) -> None:
        nonlocal connected
        call = await crowd.ask(player, lambda now: player.core.ping(now, timeout=CONNECT_WAIT_S))
        call.result()  # a player that cannot reach the front ends the row with the reason
        connected += 1
        if connected % 1000 == 0:
            progress(f"connected {connected:,}/{len(replies):,} ")

    for start in range(0, len(replies), CONNECT_WAVE):
        wave = []
        for reply in replies[start : start + CONNECT_WAVE]:
            player = crowd.add_player(reply.player)  # its connection is dialled here
            player.room = reply.room
            player.core.token, player.core.player = reply.token, reply.player
            wave.append(player)
        await asyncio.gather(*(connect(p) for p in wave))
        players += wave
    return players


def next_text(player: Player, action: str, rng: random.Random) -> str:
    if action == "mix":
        action = rng.choices([a for a, _ in MIX], [w for _, w in MIX])[0]
    if action == "move":
        return "north" if player.room == "crossroads" else "south"
    if action == "take":
        return "drop lamp" if player.holding else "take lamp"
    if action == "say":
        return f"say hello from {player.name}"
    return action


async def open_loop(
    crowd: Crowd, players: list[Player], rate: float, seconds: float, action: str, rnd: Round
) -> None:
    """``rate`` actions/s in total, round-robin over ``players``, each at its scheduled time."""
    rng = random.Random(len(players))
    total = max(1, int(rate * seconds))
    start = crowd.now()
    tasks = []
    for k in range(total):
        due = start + k / rate
        delay = due - crowd.now()
        if delay > 0:
            await asyncio.sleep(delay)
        player = players[k % len(players)]
        tasks.append(
            asyncio.ensure_future(act(crowd, player, next_text(player, action, rng), due, rnd))
        )
    await asyncio.gather(*tasks)
    rnd.seconds = crowd.now() - start


# -- the rows -------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.log = (workdir / "serve.log").open("a")
        self.redis = RedisServer(self.log) if args.store == "redis" else None
        self.subscribers_kind = ""  # what the fan-out row's subscribers were
        self.listeners: RemoteListeners | None = None  # the row's listening players

    def store_url(self, row: Row) -> str:
        if self.redis is not None:
            return f"{self.redis.url}?prefix=bench-{secrets.token_hex(4)}:"
        return (
            f"sqlite:///{self.workdir / f'{row.kind}-{row.players}-{secrets.token_hex(4)}.sqlite3'}"
        )

    def extra(self, row: Row) -> list[str]:
        """Server options of a row. The logins row is a launch-day crowd: the front-wide login
        and sign-up budgets (10 logins/s, 30 new accounts at once, which keep a flood of fresh
        names out) are raised to let every round's newcomers in, as an operator expecting that
        crowd would; the login queue still gives each worker one login at a time."""
        if row.kind != "logins":
            return []
        rounds = self.args.rounds + (1 if self.args.warmup > 0 else 0)
        return [
            "--logins-per-s",
            str(max(10, row.players)),
            "--registration-burst",
            str(row.players * rounds),
        ]

    def close(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        self.log.close()

    def run(self, row: Row) -> None:
        server = None
        try:
            if row.kind == "floor":
                self._row_floor(row)
            else:
                server = Server(self.store_url(row), self.args.workers, self.log, self.extra(row))
                asyncio.run(self._row(row, server))
            row.status = "ok"
        except Exception as exc:  # the table says why; the next row goes on
            row.status, row.note = "error", f"{type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            if server is not None:
                server.stop()

    def _row_floor(self, row: Row) -> None:
        """The machine's floor for this shape of server at ``--rate`` (bench_floor)."""
        relay = FloorRelay(self.args.workers)
        try:
            if self.args.warmup > 0:
                relay.paced(self.args.rate, self.args.warmup)
            for i in range(self.args.rounds):
                with self._bench_collector():
                    measured = relay.paced(self.args.rate, self.args.duration)
                rnd = Round(actions=measured.messages, seconds=measured.seconds)
                rnd.latencies, rnd.cpu = measured.latencies_ms, measured.cpu
                row.rounds.append(rnd)
                progress(f"r{i + 1} ")
        finally:
            relay.stop()

    async def _row(self, row: Row, server: Server) -> None:
        crowd = Crowd(
            server.endpoints["actions"], server.endpoints["updates"], server_key=server_key(server)
        )
        try:
            await getattr(self, f"_row_{row.kind}")(row, server, crowd)
        finally:
            await crowd.close()
            if self.listeners is not None:
                await asyncio.to_thread(self.listeners.close)
                self.listeners = None

    async def _measured(
        self, server: Server | ServerAndRelays, row: Row, body: Callable[[Round], Any]
    ) -> None:
        """Run ``body`` for a warm-up, then ``--rounds`` times with the CPU counted."""
        if self.args.warmup > 0:
            await body(Round(), warmup=True)
        for i in range(self.args.rounds):
            rnd = Round()
            heard = await self._heard()
            before = server.cpu()
            with self._bench_collector():
                await body(rnd, warmup=False)
            after = server.cpu()
            if not rnd.cpu:  # a row may count its own (fan-out: without its pings)
                rnd.cpu = {name: after[name] - before.get(name, 0.0) for name in after}
            if self.listeners is not None:
                events, moves = await self._heard()
                rnd.extra["heard"] = events - heard[0]
                rnd.extra["followed"] = moves - heard[1]
            row.rounds.append(rnd)
            progress(f"r{i + 1} ")

    @contextlib.contextmanager
    def _bench_collector(self) -> Any:
        """With ``--bench-gc paused`` the bench's own full collections stay out of the round.

        The bench plays up to thousands of players in one process; at 1,000 players its
        generation-2 collections paused it 66 ms at the median (gc.callbacks, issue 12), which
        showed as the server's tail. Collected before the round, off during it, on after.
        """
        if self.args.bench_gc != "paused" or not gc.isenabled():
            yield
            return
        gc.collect()
        gc.disable()
        try:
            yield
        finally:
            gc.enable()

    async def _heard(self) -> tuple[int, int]:
        """Events the listening players have taken in so far, and moves they followed."""
        if self.listeners is None:
            return 0, 0
        heard = await asyncio.to_thread(self.listeners.heard)
        return heard.events, heard.moves

    async def _players(
        self, server: Server, crowd: Crowd, count: int, prefix: str, *, listeners: int = 0
    ) -> list[Player]:
        """``count`` players, the first ``listeners`` of them listening from a child process."""
        names = [f"{prefix}{i}" for i in range(count)]
        replies = await asyncio.to_thread(register, server.store, names, progress)
        players = await bring_in(crowd, replies)
        listening = min(listeners, count)
        if listening:
            sessions = [(reply.player, reply.token) for reply in replies[:listening]]
            self.listeners = remote = await asyncio.to_thread(
                RemoteListeners,
                Listeners(
                    server.endpoints["actions"],
                    server.endpoints["updates"],
                    server_key(server),
                    sessions,
                ),
            )
            for i, player in enumerate(players[:listening]):
                player.on_moved = lambda reply, marks, i=i: remote.moved(i, reply, marks)
        return players

    async def _row_rate(self, row: Row, server: Server, crowd: Crowd) -> None:
        a = self.args
        players = await self._players(server, crowd, row.players, "p", listeners=a.listeners)

        async def body(rnd: Round, warmup: bool) -> None:
            seconds = a.warmup if warmup else a.duration
            await open_loop(crowd, players, a.rate, seconds, a.action, rnd)

        await self._measured(server, row, body)

    async def _row_closed(self, row: Row, server: Server, crowd: Crowd) -> None:
        a = self.args
        players = await self._players(server, crowd, row.players, "c", listeners=a.listeners)
        rng = random.Random(1)

        async def body(rnd: Round, warmup: bool) -> None:
            stop_at = crowd.now() + (a.warmup if warmup else a.duration)

            async def one(player: Player) -> None:
                while (begin := crowd.now()) < stop_at:
                    await act(crowd, player, next_text(player, a.action, rng), begin, rnd)

            start = crowd.now()
            await asyncio.gather(*(one(p) for p in players))
            rnd.seconds = crowd.now() - start
            rnd.extra["rate"] = rnd.actions / rnd.seconds

        await self._measured(server, row, body)

    async def _row_seq(self, row: Row, server: Server, crowd: Crowd) -> None:
        (player,) = await self._players(server, crowd, 1, "s")
        a = self.args

        async def body(rnd: Round, warmup: bool) -> None:
            stop_at = crowd.now() + (a.warmup if warmup else a.duration)
            while (begin := crowd.now()) < stop_at:
                await act(crowd, player, "look", begin, rnd)

        await self._measured(server, row, body)

    async def _row_fanout(self, row: Row, server: Server, crowd: Crowd) -> None:
        await fan_out(self, row, server, crowd)

    async def _row_logins(self, row: Row, server: Server, crowd: Crowd) -> None:
        a = self.args
        players = await self._players(server, crowd, a.closed_players, "e", listeners=a.listeners)
        rounds = iter(range(1_000_000))

        async def body(rnd: Round, warmup: bool) -> None:
            if warmup:
                await open_loop(crowd, players, a.rate, a.warmup, a.action, rnd)
                return
            tag = f"n{next(rounds)}x{secrets.token_hex(2)}"
            # The newcomers are other clients: they log in from a process of their own, so
            # that their handshakes do not hold up the loop that times the players.
            newcomers = await asyncio.to_thread(
                RemoteNewcomers,
                Newcomers(
                    server.endpoints["actions"],
                    server.endpoints["updates"],
                    server_key(server),
                    [f"{tag}{i}" for i in range(row.players)],
                    PASSWORD,
                ),
            )
            play = Round()
            try:
                playing = asyncio.ensure_future(
                    open_loop(crowd, players, a.rate, 1e9, a.action, play)  # until cancelled
                )
                try:
                    report = await newcomers.run()
                finally:
                    playing.cancel()
                    await asyncio.gather(playing, return_exceptions=True)
            finally:
                await asyncio.to_thread(newcomers.close)
            rnd.actions = len(report.logins_ms) + play.actions
            rnd.errors = report.failures + play.errors
            rnd.latencies = report.logins_ms
            rnd.seconds = report.all_s
            rnd.extra["all_s"] = report.all_s
            rnd.extra["play_p99"] = play.pct(99)
            rnd.extra["play_errors"] = play.errors

        await self._measured(server, row, body)


# -- the report -----------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for kind in args.rows:
        if kind == "rate":
            rows += [Row("rate", n) for n in args.players]
        elif kind == "floor":
            rows.append(Row("floor", 0))
        elif kind == "closed":
            rows.append(Row("closed", args.closed_players))
        elif kind == "seq":
            rows.append(Row("seq", 1))
        elif kind == "fanout":
            rows.append(Row("fanout", args.subscribers, relays=args.fan_relays))
        elif kind == "logins":
            rows.append(Row("logins", args.logins))
    return rows


def run_players(args: argparse.Namespace) -> int:
    rows = plan(args)
    # A listener that falls behind logs each repaired gap; the table, not the log, reports.
    logging.getLogger("client").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="crossroads-bench-players-"))
    started = time.monotonic()
    try:
        try:
            bench = Bench(args, workdir)
        except BenchError as exc:
            print(f"crossroads bench players: {exc}", file=sys.stderr)
            return 1
        try:
            for i, row in enumerate(rows, 1):
                progress(f"[{i}/{len(rows)}] {row.label} ... ")
                bench.run(row)
                progress("ok\n" if row.status == "ok" else f"error: {row.note}\n")
        finally:
            bench.close()
    except KeyboardInterrupt:
        print("\ncrossroads bench players: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load = os.getloadavg()
    intro = (
        f"crossroads bench players: store {args.store}, {args.workers} worker(s), "
        f"action {args.action}, {args.rate:g} actions/s in the rate rows, "
        f"{args.duration:g}s x {args.rounds} round(s) (median), {args.listeners} "
        f"listening (from a child process); {os.cpu_count()} core(s), load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        f"; bench gc {args.bench_gc} in rounds"
    )
    if bench.subscribers_kind:
        intro += f"; fan-out subscribers: {bench.subscribers_kind}"
    if args.json:
        out = [
            {
                "row": r.label,
                "kind": r.kind,
                "players": r.players,
                "status": r.status,
                "note": r.note,
                "p50_ms": r.median(lambda x: x.pct(50)) if r.rounds else None,
                "p99_ms": r.median(lambda x: x.pct(99)) if r.rounds else None,
                "errors": sum(x.errors for x in r.rounds),
                # Events the listening players took in over the measured rounds, and the
                # moves of their players they followed.
                "listeners_heard": sum(x.extra.get("heard", 0) for x in r.rounds),
                "listeners_followed": sum(x.extra.get("followed", 0) for x in r.rounds),
                "cpu_us_per_action": r.cpu_per_action_us() if r.rounds else {},
                "figures": [
                    {"figure": f, "measured": v, "now": n, "target": t, "ratio": q}
                    for f, v, n, t, q in (key_figures(r, args) if r.status == "ok" else [])
                ],
            }
            for r in rows
        ]
        print(json.dumps({"suite": "players", "intro": intro, "rows": out}, indent=2))
    else:
        print(intro)
        print(table(rows, args))
    progress(f"done in {time.monotonic() - started:.1f}s\n")
    return 0 if all(r.status == "ok" for r in rows) else 1


def progress(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


__all__ = ["ROWS", "add_arguments", "run_players", "server_key"]
