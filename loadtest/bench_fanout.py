"""`crossroads bench players`' fan-out row: one ``say`` reaching ``--subscribers``
subscribers of the room, timed from its send to its last arrival, with a concurrent ping.

With ``--fan-relays N`` the subscribers are behind regional relays, the architecture's answer
to many subscribers: the front sends a room's event once to each relay, and each relay sends
it on to its own region's players. On one machine the relays are N `crossroads relay`
processes in front of the bench's server, each with its own CURVE key for its region (the
bench made it: the relay's own banner says it), each taking an even share of the
subscribers. Their CPU is counted with the server's, per process, from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from loadtest.bench_crowd import (
    LOCAL,
    START_TIMEOUT_S,
    BenchError,
    Crowd,
    Player,
    Server,
    act,
    child_env,
    cpu_seconds,
    server_key,
    start_failure,
)
from loadtest.bench_players_report import Round, Row, percentile
from loadtest.bench_subscribers import RemoteSubscribers, have_pyzmq


class Bench(Protocol):
    """What the row takes from `crossroads bench players`' Bench (bench_players)."""

    args: argparse.Namespace
    workdir: Path
    log: Any
    subscribers_kind: str

    async def _players(
        self, server: Server, crowd: Crowd, count: int, prefix: str, *, listeners: int = 0
    ) -> list[Player]: ...

    def _measured(
        self, server: Any, row: Row, body: Callable[[Round, bool], Awaitable[None]]
    ) -> Awaitable[None]: ...


class Relay:
    """One relay process (`crossroads relay`): its region's endpoint and key from its own stdout."""

    def __init__(
        self, upstream: str, upstream_key: bytes, workdir: Path, name: str, log: Any
    ) -> None:
        home = workdir / name
        home.mkdir(parents=True, exist_ok=True)
        args = ["--upstream", upstream, "--upstream-key", upstream_key.decode()]
        args += ["--bind", LOCAL, "--key-bind", LOCAL]
        args += ["--keys-dir", str(home), "--known-hosts", str(home / "known_hosts")]
        args += ["--stats-interval", "0", "--log-level", "WARNING"]
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            env=child_env(),
            text=True,
        )
        self.endpoint = ""
        self.key: bytes | None = None
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        said_ready = ready.wait(START_TIMEOUT_S)
        if not said_ready or not self.endpoint:
            failure = start_failure(self.process, said_ready, f"relay {name}", log)
            self.stop()
            raise BenchError(failure)

    def _read(self, ready: threading.Event) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if match := re.match(r"^updates (\S+)", line):
                self.endpoint = match[1]
            elif match := re.match(r"^key \S+ (\S+)", line):
                self.key = match[1].encode()  # we started it: its own word is the key
            elif line.startswith("ready"):
                ready.set()
        ready.set()  # exited: let the waiter see it

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def even_shares(total: int, parts: int) -> list[int]:
    """``total`` split over ``parts``, the first ones one more where it does not divide."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Relays:
    """``count`` relays in front of one server's updates endpoint."""

    def __init__(
        self, count: int, upstream: str, upstream_key: bytes, workdir: Path, log: Any
    ) -> None:
        self.relays: list[Relay] = []
        try:
            for i in range(1, count + 1):
                self.relays.append(Relay(upstream, upstream_key, workdir, f"r{i}", log))
        except BaseException:
            self.stop()
            raise

    def regions(self, subscribers: int) -> list[tuple[str, bytes | None, int]]:
        """(endpoint, key, how many subscribers) for each relay that gets any."""
        shares = even_shares(subscribers, len(self.relays))
        return [(r.endpoint, r.key, n) for r, n in zip(self.relays, shares, strict=True) if n]

    def cpu(self) -> dict[str, float]:
        return {relay.name: cpu_seconds(relay.process.pid) for relay in self.relays}

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()


class ServerAndRelays:
    """The processes a fan-out row counts: the server's, then its relays' (if any)."""

    def __init__(self, server: Server, relays: Relays | None) -> None:
        self.server = server
        self.relays = relays

    def cpu(self) -> dict[str, float]:
        cpu = self.server.cpu()
        if self.relays is not None:
            cpu.update(self.relays.cpu())
        return cpu


# -- the row ------------------------------------------------------------------------------------


async def fan_out(bench: Bench, row: Row, server: Server, crowd: Crowd) -> None:
    """The fan-out row: its subscribers (and relays) set up, then measured as the bench's
    rounds."""
    from gameserver.broadcast import wire_topic
    from gameserver.topics import room_topic

    speaker, pinger = await bench._players(server, crowd, 2, "f")
    topic = wire_topic(room_topic(speaker.room))
    key = server_key(server)
    relays = None
    if bench.args.fan_relays:
        if key is None:  # the bench's front always has one: a guard, not a path
            raise BenchError("--fan-relays needs a front with a CURVE key")
        relays = await asyncio.to_thread(
            Relays,
            bench.args.fan_relays,
            server.endpoints["updates"],
            key,
            bench.workdir,
            bench.log,
        )
    try:
        if relays is not None:
            regions = relays.regions(row.players)
        else:
            regions = [(server.endpoints["updates"], key, row.players)]
        if have_pyzmq():
            group: Any = await asyncio.to_thread(RemoteSubscribers, regions, topic)
        elif relays is None:
            group = await crowd.add_subscribers(row.players, topic)
        else:
            raise BenchError("--fan-relays needs pyzmq for the subscribers (pip install pyzmq)")
        bench.subscribers_kind = group.kind
        meter = ServerAndRelays(server, relays)
        try:
            await _until_all_hear(crowd, speaker, group)
            await bench._measured(
                meter,
                row,
                lambda rnd, warmup: _fan(
                    meter,
                    crowd,
                    speaker,
                    pinger,
                    group,
                    rnd,
                    2 if warmup else bench.args.fan_events,
                ),
            )
        finally:
            group.close()
    finally:
        if relays is not None:
            relays.stop()


async def _fan(
    server: ServerAndRelays,
    crowd: Crowd,
    speaker: Player,
    pinger: Player,
    group: Any,
    rnd: Round,
    events: int,
) -> None:
    """``events`` room events with no pings, for the server's CPU per event; then as many
    with pings going, for the arrival times and the pings' round trips."""
    before = server.cpu()
    # The receiving side's own CPU, where it is a process of its own (not the server's).
    receiving_cpu: Callable[[], float] | None = getattr(group, "cpu", None)
    receiving = receiving_cpu() if receiving_cpu is not None else 0.0
    for _ in range(events):
        marker = f"cpu{secrets.token_hex(4)}".encode()
        group.watch(marker)
        await act(crowd, speaker, f"say {marker.decode()}", crowd.now(), Round())
        await group.finish(marker, 5.0)
    after = server.cpu()
    rnd.cpu = {name: after[name] - before.get(name, 0.0) for name in after}
    if receiving_cpu is not None:
        rnd.extra["subscribers_us"] = (receiving_cpu() - receiving) * 1e6 / events
    pings: list[float] = []
    lasts = []
    for k in range(events):
        marker = f"fan{k}x{secrets.token_hex(4)}".encode()
        group.watch(marker)
        start = crowd.now()
        # Pings only while this event is on its way: the front's loop is what they test.
        # (finish() takes the arrivals away, and complete() is then False again: without
        # `heard`, the pings went on for their whole 5 s after every event, thousands of
        # them on an idle front, and its p99 said nothing of the broadcast.)
        heard = [False]
        pinging = asyncio.ensure_future(
            ping_until(crowd, pinger, lambda m=marker, h=heard: h[0] or group.complete(m), pings)
        )
        await act(crowd, speaker, f"say {marker.decode()}", start, Round())
        times = await group.finish(marker, 5.0)
        heard[0] = True
        await pinging
        rnd.errors += group.count - len(times)
        lasts.append((max(times, default=crowd.now()) - start) * 1000)
        rnd.actions += 1
        await asyncio.sleep(0.05)
    rnd.latencies = lasts
    rnd.extra["ping_p99"] = percentile(pings, 99)
    rnd.extra["pings"] = len(pings)


async def _until_all_hear(crowd: Crowd, speaker: Player, group: Any) -> None:
    """Subscriptions reach the front a moment after connecting: say things until every
    subscriber hears one."""
    deadline = crowd.now() + 60
    while crowd.now() < deadline:
        marker = f"hello{secrets.token_hex(4)}".encode()
        group.watch(marker)
        await act(crowd, speaker, f"say {marker.decode()}", crowd.now(), Round())
        if len(await group.finish(marker, 0.5)) >= group.count:
            return
    raise BenchError(f"not all {group.count} subscribers were reached within 60s")


async def ping_until(
    crowd: Crowd, pinger: Player, done: Callable[[], bool], out: list[float]
) -> None:
    """Sequential pings (the front answers them itself) until ``done()``, 5 s at most."""
    deadline = crowd.now() + 5.0
    while not done() and crowd.now() < deadline:
        call = await crowd.ask(pinger, pinger.core.ping)
        if call.error is None:
            out.append(call.round_trip_ms)
