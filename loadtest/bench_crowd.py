"""What `crossroads bench players` drives: a real server, and a crowd of players talking to it.

* :class:`Server` starts a real ``crossroads serve`` (and, for ``--store redis``, a real
  ``redis-server`` on a free port), reads its endpoints and worker PIDs from its stdout, and
  samples each process's CPU time from ``/proc/PID/stat``. Everything started is killed by PID.
* :class:`Crowd` is a thin asyncio driver of many :class:`client.protocol.ClientCore` objects on
  one event loop: the same protocol core as every other client, one request connection (DEALER)
  per player as in real play, and an update connection (SUB) only for the players asked to
  listen. A crowd of thousands in which everybody listened would measure the bench's own
  decoding, not the server: the server's fan-out is measured separately, with plain
  subscribers (:meth:`Crowd.add_subscribers`).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import engine
import engine.asyncio as ezmq
from client.protocol import MAX_ANSWER_BYTES, MAX_PUBLICATION_BYTES, Call, ClientCore
from client.shared_decoding import SharedDecoding
from loadtest.bench_players_report import Round
from loadtest.ports import free_port

#: Longest wait for a server to print "ready" (it starts worker processes).
START_TIMEOUT_S = 60.0
#: How long a child whose output has ended is given to be reaped: its stdout closes a moment
#: before its exit code can be read, and that moment is no reason to call it still starting.
EXIT_GRACE_S = 5.0
LOCAL = "tcp://127.0.0.1:0"
#: Messages taken from one socket before the core's outbox is carried out.
READ_BATCH = 256
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A run that could not be set up or measured; the message says why (one line)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc/PID/stat (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class RedisServer:
    """A throw-away redis-server on a free port, data in a temporary directory."""

    def __init__(self, log: Any) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise BenchError("--store redis needs redis-server on PATH (apt install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="crossroads-bench-redis-")
        self.port = free_port()
        # Append-only, as the compose file runs it: the server refuses a volatile Redis.
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", ""]
        args += ["--appendonly", "yes"]
        self.process = subprocess.Popen([binary, *args], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BenchError("redis-server did not start within 10s")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


#: Connections per player port the bench's server takes: above its largest row's players.
BENCH_MAX_CONNECTIONS = 16_384


def child_env() -> dict[str, str]:
    """The environment of a server process the bench starts: this checkout first on its path,
    its output unbuffered (the bench reads its banner's lines as they come)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_failure(process: subprocess.Popen[str], said_ready: bool, what: str, log: Any) -> str:
    """Why a child the bench started is not ready: its exit code and the last lines of the
    log it writes its errors to, if it exited; else that it is still starting, or that it
    said ready without the endpoints the bench reads from its banner."""
    try:
        code = process.wait(EXIT_GRACE_S) if said_ready else process.poll()
    except subprocess.TimeoutExpired:
        code = None
    if code is not None:
        return f"{what} exited with code {code} before it was ready{log_tail(log)}"
    if not said_ready:
        return f"{what} did not start within {START_TIMEOUT_S:g}s"
    return f"{what} said it was ready without the endpoints of its banner"


def log_tail(log: Any) -> str:
    """The last lines of ``log`` (an open file the children write their errors to), after a
    colon, to end a sentence with; empty when it is not a file with a name."""
    path = getattr(log, "name", None)
    if not isinstance(path, str):
        return ""
    log.flush()
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return ": " + " | ".join(lines[-3:]) if lines else ""


class Server:
    """A `crossroads serve` child: endpoints and worker PIDs from its stdout, CPU from /proc."""

    def __init__(self, store: str, workers: int, log: Any, extra: list[str] | None = None) -> None:
        env = child_env()
        args = ["--workers", str(workers), "--store", store]
        args += ["--actions-bind", LOCAL, "--updates-bind", LOCAL, "--workers-bind", LOCAL]
        # Thousands of players behind one address: no per-session limit in the way, and room
        # for every player's request in the queue.
        args += ["--rate", "1e9", "--burst", "1e9", "--max-pending", "100000"]
        # The rate row's 5,000 players are over the default cap of 4,096 connections per port:
        # the ones beyond it were refused, redialled, and counted as errors (and the front spent
        # its time accepting and refusing them).
        args += ["--max-connections", str(BENCH_MAX_CONNECTIONS)]
        args += ["--log-level", "WARNING", *(extra or [])]
        self.store = store
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gameserver.serve", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            text=True,
        )
        self.endpoints: dict[str, str] = {}
        self.workers: dict[str, int] = {}  # name -> pid
        self.lines: list[str] = []
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        said_ready = ready.wait(START_TIMEOUT_S)
        if not said_ready or "actions" not in self.endpoints:
            failure = start_failure(self.process, said_ready, "the server", log)
            self.stop()
            raise BenchError(failure)

    def _read(self, ready: threading.Event) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if match := re.match(r"^(actions|updates) (\S+)", line):
                self.endpoints[match[1]] = match[2]
            elif match := re.match(r"^front public key (\S+)", line):
                self.endpoints["key"] = match[1]  # we started it: its own word is the key
            elif match := re.match(r"^worker (\S+) (?:re)?started: pid (\d+)", line):
                self.workers[match[1]] = int(match[2])
            elif line.startswith("ready"):
                ready.set()
        ready.set()  # exited: let the waiter see it

    def pids(self) -> dict[str, int]:
        """Each server process by role: the front, then the workers."""
        return {"front": self.process.pid, **dict(sorted(self.workers.items()))}

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # graceful: the server stops its own workers
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid in self.workers.values():  # normally gone with the front; never leave one
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        if self.process.stdout is not None:
            self.process.stdout.close()


def server_key(server: Server) -> bytes | None:
    """The front's CURVE key, from its own banner (the bench started it); None: cleartext."""
    return server.endpoints["key"].encode() if "key" in server.endpoints else None


@dataclass(eq=False)
class Player:
    """One logged-in player: its protocol core and its connections."""

    index: int
    name: str
    core: ClientCore
    dealer: ezmq.Socket
    sub: ezmq.Socket | None = None
    room: str | None = None  # where the player is (for the move part of the mix)
    holding: bool = False  # for the take/drop part of the mix
    timer: asyncio.TimerHandle | None = None
    timer_at: float | None = None
    #: Told of each reply that takes the player to another room (its listening twin follows).
    on_moved: Callable[[Any, dict[str, int]], None] | None = None


@dataclass
class Subscribers:
    """Plain engine SUB connections to one topic in the bench's own loop, timing when a marked
    message reaches each (the interface of bench_subscribers.RemoteSubscribers)."""

    sockets: list[ezmq.Socket]
    arrivals: dict[bytes, list[float]] = field(default_factory=dict)  # marker -> times
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    kind: str = "engine, in the bench's own loop"

    @property
    def count(self) -> int:
        return len(self.sockets)

    def watch(self, marker: bytes) -> None:
        self.arrivals[marker] = []

    def complete(self, marker: bytes) -> bool:
        return len(self.arrivals.get(marker, ())) >= self.count

    async def finish(self, marker: bytes, timeout: float) -> list[float]:
        deadline = time.perf_counter() + timeout
        while not self.complete(marker) and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        return self.arrivals.pop(marker, [])

    def close(self) -> None:
        """Closed with the crowd."""


class Crowd:
    """Many players on one event loop, each driven through its own ClientCore."""

    def __init__(
        self, actions: str, updates: str, *, timeout: float = 10.0, server_key: bytes | None = None
    ) -> None:
        self.actions, self.updates = actions, updates
        self.timeout = timeout
        self.context = ezmq.Context()
        if server_key is not None:
            # CURVE, as every player of a default front: the handshakes are part of the cost.
            self.context.curve_serverkey = server_key
            self.context.curve_publickey, self.context.curve_secretkey = engine.curve_keypair()
        # Thousands of players, each with its own connection (libzmq's default cap is 1023).
        self.context.set(engine.MAX_SOCKETS, 1_000_000)
        self.players: list[Player] = []
        self._waiters: dict[Call, asyncio.Future[Call]] = {}
        self._subscribers: list[Subscribers] = []
        self.events = 0  # events delivered to listening players
        #: Listening players in one room get the same frames: each is decoded once for all.
        self.publications = SharedDecoding()

    # -- players --------------------------------------------------------------------------------

    def add_player(self, name: str, *, listen: bool = False, follow: bool | None = None) -> Player:
        # By default a player that does not listen here acts only: a listening twin in another
        # process follows its topics (bench_listeners), or nobody does. Following here too
        # would send a catch-up for every room it enters that no client reads.
        follow = listen if follow is None else follow
        core = ClientCore(
            timeout=self.timeout,
            retries=1,
            busy_budget=30.0,
            follow=follow,
            decode=self.publications.decode,
        )
        player = Player(len(self.players), name, core, self._dealer())
        if listen:
            player.sub = self.context.socket(engine.SUB)
            player.sub.setsockopt(engine.MAXMSGSIZE, MAX_PUBLICATION_BYTES)
            player.sub.connect(self.updates)
            player.sub.on_recv_batch(
                partial(self._received, player, player.core.receive_publication)
            )
        self._read_answers(player)
        self.players.append(player)
        return player

    def _dealer(self) -> ezmq.Socket:
        sock = self.context.socket(engine.DEALER)
        sock.linger = 0
        sock.setsockopt(engine.MAXMSGSIZE, MAX_ANSWER_BYTES)
        sock.connect(self.actions)
        return sock

    async def ask(self, player: Player, make: Callable[[float], Call]) -> Call:
        """Start a call on ``player``'s core and wait until it is finished (answered or
        failed); the finished Call says which, and when (``answered_at``)."""
        call = make(self.now())
        self.flush(player)
        if call.done:
            return call
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[call] = waiter
        try:
            return await waiter
        finally:
            self._waiters.pop(call, None)

    @staticmethod
    def now() -> float:
        return time.perf_counter()

    # -- carrying out what a core says ----------------------------------------------------------

    # Each connection hands the player's core what one read brought, in the loop pass that
    # read it (the engine's on_recv_batch, as the front and the workers read): no task, no
    # future per message, no EVENTS poll per batch. The bench shares the machine's two cores
    # with the server, and its readers awaiting recv_multipart were a tenth of its listening
    # process's CPU in the closed loop (py-spy, 2026-12-07).

    def _read_answers(self, player: Player) -> None:
        player.dealer.on_recv_batch(partial(self._received, player, player.core.receive_answer))

    def _received(
        self,
        player: Player,
        receive: Callable[[list[bytes], float], None],
        batch: list[list[bytes]],
    ) -> None:
        now = self.now()
        for frames in batch:
            receive(frames, now)
        self.flush(player)

    def flush(self, player: Player) -> None:
        """Carry out what the player's core says: send, subscribe, finish calls, arm its timer."""
        out = player.core.take()
        if out.reset:  # Lazy Pirate: a fresh request connection, the old one dropped
            old = player.dealer
            old.on_recv_batch(None)  # what it still holds is the dropped connection's
            player.dealer = self._dealer()
            self._read_answers(player)
            old.close(linger=0)
        if player.sub is not None:
            for subscribe, topic in out.subscriptions:
                (player.sub.subscribe if subscribe else player.sub.unsubscribe)(topic)
        for frames in out.send:
            _send_now(player.dealer, frames)  # if it cannot go now, the try's timeout resends it
        self.events += len(out.events)
        for call in out.done:
            waiter = self._waiters.get(call)
            if waiter is not None and not waiter.done():
                waiter.set_result(call)
        self._arm(player)

    def _arm(self, player: Player) -> None:
        when = player.core.next_deadline()
        if when == player.timer_at:
            return
        if player.timer is not None:
            player.timer.cancel()
        player.timer_at, player.timer = when, None
        if when is not None:
            loop = asyncio.get_running_loop()
            # perf_counter and the loop's clock differ in origin, not in rate.
            delay = max(0.0, when - self.now())
            player.timer = loop.call_later(delay, self._on_timer, player)

    def _on_timer(self, player: Player) -> None:
        player.timer = player.timer_at = None
        player.core.tick(self.now())
        self.flush(player)

    # -- plain subscribers, for the fan-out measure ---------------------------------------------

    async def add_subscribers(self, count: int, topic: bytes) -> Subscribers:
        """``count`` SUB connections subscribed to ``topic`` (a wire topic)."""
        group = Subscribers([])
        for _ in range(count):
            sock = self.context.socket(engine.SUB)
            sock.setsockopt(engine.MAXMSGSIZE, MAX_PUBLICATION_BYTES)
            sock.connect(self.updates)
            sock.subscribe(topic)
            group.sockets.append(sock)
            group.tasks.append(asyncio.get_running_loop().create_task(self._listen(group, sock)))
        self._subscribers.append(group)
        return group

    async def _listen(self, group: Subscribers, sock: ezmq.Socket) -> None:
        while True:
            batch = [await sock.recv_multipart()]
            batch += await _more(sock)
            now = self.now()
            for frames in batch:
                for marker, times in group.arrivals.items():
                    if len(frames) == 1 and marker in frames[0]:
                        times.append(now)

    # -- the end --------------------------------------------------------------------------------

    async def close(self) -> None:
        tasks = []
        for group in self._subscribers:
            tasks += group.tasks
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for player in self.players:
            if player.timer is not None:
                player.timer.cancel()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.cancel()
        self.context.destroy(linger=0)


def _send_now(sock: ezmq.Socket, frames: list[bytes]) -> None:
    """Queue a message without waiting; a refusal (Again: queue full) is read and dropped."""
    sent = sock.send_multipart(frames, engine.DONTWAIT)
    if isinstance(sent, asyncio.Future) and sent.done() and not sent.cancelled():
        sent.exception()  # retrieved, so asyncio does not log it as unhandled
    elif not isinstance(sent, asyncio.Future):
        sent.close()  # a coroutine: only under a blocking call, never with DONTWAIT


async def _more(sock: ezmq.Socket) -> list[list[bytes]]:
    """What else ``sock`` holds now, up to a batch, without waiting."""
    out: list[list[bytes]] = []
    # Asked through EVENTS, not by a DONTWAIT recv that fails: the failure is an Again raised
    # through a future (13.8 µs against 3.8 µs, measured), once per batch, and a listening
    # player's batch is mostly one event.
    while len(out) < READ_BATCH and sock.get(engine.EVENTS) & engine.POLLIN:
        out.append(await sock.recv_multipart())
    return out


async def act(crowd: Crowd, player: Player, text: str, scheduled: float, rnd: Round) -> float:
    """One action; its latency from ``scheduled`` is recorded (or an error counted)."""
    call = await crowd.ask(player, lambda now: player.core.act(text, now))
    if call.error is not None:
        rnd.errors += 1
        return -1.0
    reply = call.reply
    if getattr(reply, "room", None):
        if reply.room != player.room and player.on_moved is not None:
            player.on_moved(reply, call.marks)
        player.room = reply.room
    if text.startswith(("take", "drop")) and getattr(reply, "ok", False):
        player.holding = text.startswith("take")
    latency = (call.answered_at - scheduled) * 1000 if call.answered_at else 0.0
    rnd.actions += 1
    rnd.latencies.append(latency)
    if call.sent_at is not None and call.answered_at is not None:
        rnd.after_send.append((call.answered_at - call.sent_at) * 1000)
    return latency
