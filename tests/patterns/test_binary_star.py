"""Binary Star: the FSM's transition table (sans-I/O), then fault injection on real processes.

Servers run as `python -m engine.patterns.binary_star`; clients are threads in this process.
Primary death is SIGKILL; a network partition is SIGSTOP/SIGCONT on the primary.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import engine as zmq
from engine.patterns.binary_star import (
    EXIT_FATAL,
    AsyncBinaryStarClient,
    BinaryStarClient,
    BinaryStarFatal,
    BinaryStarFSM,
    Event,
    State,
    split_envelope,
)

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = 0.4  # peer expiry 0.8 s
CLIENT_TIMEOUT = 1.0
SETTLE = 1.2  # > peer expiry, with room for a loaded machine
FAILOVER_BOUND = 5.0  # generous: ~2.2 s expected, but the machine is shared
START_TIMEOUT = 20.0

P, B, A, S = State.PRIMARY, State.BACKUP, State.ACTIVE, State.PASSIVE
E = Event
FATAL = "fatal"
REJECT = "reject"

# -- the FSM, sans I/O ----------------------------------------------------------------------------

#: (state, event) -> new state, FATAL, or REJECT (client request dropped, state unchanged).
#: Written out from the Guide's chapter 4 table, independently of the module's own dicts.
EXPECTED = {
    (P, E.PEER_PRIMARY): P,
    (P, E.PEER_BACKUP): A,
    (P, E.PEER_ACTIVE): S,
    (P, E.PEER_PASSIVE): P,
    (P, E.CLIENT_REQUEST): P,
    (B, E.PEER_PRIMARY): B,
    (B, E.PEER_BACKUP): B,
    (B, E.PEER_ACTIVE): S,
    (B, E.PEER_PASSIVE): B,
    (B, E.CLIENT_REQUEST): REJECT,
    (A, E.PEER_PRIMARY): A,
    (A, E.PEER_BACKUP): A,
    (A, E.PEER_ACTIVE): FATAL,
    (A, E.PEER_PASSIVE): A,
    (A, E.CLIENT_REQUEST): A,
    (S, E.PEER_PRIMARY): A,
    (S, E.PEER_BACKUP): A,
    (S, E.PEER_ACTIVE): S,
    (S, E.PEER_PASSIVE): FATAL,
    (S, E.CLIENT_REQUEST): REJECT,  # the peer is alive (just heard from)
}


def fsm_in(state: State, now: float = 100.0) -> BinaryStarFSM:
    fsm = BinaryStarFSM(primary=state is not State.BACKUP, heartbeat=1.0)
    fsm.state = state
    fsm.peer_expiry = now + 2.0  # as if the peer spoke just now
    return fsm


@pytest.mark.parametrize(("state", "event"), sorted(EXPECTED))
def test_transition_table(state: State, event: Event) -> None:
    fsm = fsm_in(state)
    expected = EXPECTED[(state, event)]
    if expected == FATAL:
        with pytest.raises(BinaryStarFatal):
            fsm.on_event(event, 100.0)
        return
    accepted = fsm.on_event(event, 100.0)
    if expected == REJECT:
        assert accepted is False
        assert fsm.state is state
    else:
        assert accepted is True
        assert fsm.state is expected


def test_passive_takes_over_only_on_a_client_request_after_peer_expiry() -> None:
    fsm = BinaryStarFSM(primary=False, heartbeat=1.0)
    assert fsm.on_event(E.PEER_ACTIVE, now=10.0)
    assert fsm.state is S and fsm.peer_expiry == 12.0
    # Silence alone (a partition, no clients) changes nothing, however long it lasts.
    assert fsm.on_event(E.CLIENT_REQUEST, now=11.9) is False
    assert fsm.state is S
    assert fsm.on_event(E.CLIENT_REQUEST, now=12.0) is True
    assert fsm.state is A
    # The partition heals: the old primary still thinks it is active -> fatal on both sides.
    with pytest.raises(BinaryStarFatal):
        fsm.on_event(E.PEER_ACTIVE, now=13.0)


def test_backup_that_never_heard_the_primary_never_serves() -> None:
    fsm = BinaryStarFSM(primary=False, heartbeat=1.0)
    for now in (0.0, 5.0, 500.0):
        assert fsm.on_event(E.CLIENT_REQUEST, now) is False
    assert fsm.state is B


def test_peer_messages_on_the_wire() -> None:
    fsm = BinaryStarFSM(primary=True, heartbeat=0.5)
    assert fsm.state_message() == b"1"
    for junk in (b"", b"x", b"9", b"\xff", b"5"):  # 5 is CLIENT_REQUEST, not a state
        assert fsm.on_peer_message(junk, 1.0) is False
    assert fsm.state is P
    assert fsm.on_peer_message(b"2", 1.0)
    assert fsm.state is A and fsm.state_message() == b"3"
    assert fsm.peer_expiry == 2.0


def test_split_envelope() -> None:
    assert split_envelope([b"id", b"", b"a", b"b"]) == ([b"id", b""], [b"a", b"b"])
    assert split_envelope([b"id", b"a"]) == ([b"id"], [b"a"])
    assert split_envelope([b"id", b"x", b"", b"a"]) == ([b"id", b"x", b""], [b"a"])
    assert split_envelope([b"id", b""]) == ([b"id", b""], [])


# -- real processes -------------------------------------------------------------------------------


def private_endpoints(directory: str, *names: str) -> list[str]:
    """ipc endpoints in a directory of this test's own. Each server must know its peer's
    state endpoint before either starts, so they cannot bind port 0 and report back; a tcp
    port found free and released first can be taken meanwhile by any connection's local port
    (it was, once, under CI's parallel run: "Address already in use")."""
    return [f"ipc://{directory}/{name}" for name in names]


class Server:
    """One server process; its stdout lines are collected by a thread for waiting on."""

    def __init__(self, role: str, frontend: str, pub: str, sub: str, status: str) -> None:
        cmd = [sys.executable, "-m", "engine.patterns.binary_star", f"--{role}"]
        cmd += ["--frontend", frontend, "--statepub", pub, "--statesub", sub]
        cmd += ["--status", status, "--heartbeat", str(HEARTBEAT)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.role = role
        self.frontend = frontend
        self.status = status
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.strip())
                self._cond.notify_all()

    def wait_line(self, wanted: str, timeout: float = START_TIMEOUT) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: wanted in self.lines, timeout)
        assert ok, f"{self.role} never printed {wanted!r}: {self.lines}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process still dies, but be sure
            self.proc.kill()
        self.proc.wait(10)


class Pair:
    def __init__(self, directory: str) -> None:
        names = ("fa", "fb", "pa", "pb", "sa", "sb")
        self.fa, self.fb, self.pa, self.pb, self.sa, self.sb = private_endpoints(directory, *names)
        self.servers: list[Server] = []
        self.primary = self.start_primary()
        self.backup = self._start(Server("backup", self.fb, self.pb, self.pa, self.sb))

    def _start(self, server: Server) -> Server:
        self.servers.append(server)
        return server

    def start_primary(self) -> Server:
        return self._start(Server("primary", self.fa, self.pa, self.pb, self.sa))

    def wait_ready(self) -> None:
        self.primary.wait_line("STATE ACTIVE")
        self.backup.wait_line("STATE PASSIVE")


@pytest.fixture
def pair() -> Iterator[Pair]:
    # Short paths: a Unix socket's path is at most 107 bytes, and pytest's tmp_path is long.
    directory = tempfile.mkdtemp(prefix="bstar-")
    p = Pair(directory)
    try:
        p.wait_ready()
        yield p
    finally:
        for server in p.servers:
            server.kill()
        shutil.rmtree(directory, ignore_errors=True)


def query_state(endpoint: str, timeout: float = 2.0) -> str | None:
    """The server's state via its status port (not a client request); None if no answer."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ, linger=0)
    try:
        sock.connect(endpoint)
        sock.send(b"?")
        if sock.poll(int(timeout * 1000)):
            return sock.recv().decode()
        return None
    finally:
        sock.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Load:
    """Clients sending requests back to back, each logging (reply time, server) per success."""

    def __init__(self, pair: Pair, sync_clients: int = 2) -> None:
        self.pair = pair
        self.stop = threading.Event()
        self.log: dict[str, list[tuple[float, str]]] = {}
        self.errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._sync_client, args=(f"s{i}",), daemon=True)
            for i in range(sync_clients)
        ]
        self._threads.append(threading.Thread(target=self._async_client, daemon=True))
        for t in self._threads:
            t.start()

    def _record(self, name: str, sent: bytes, reply: list[bytes], server: str) -> None:
        if reply != [sent]:
            raise AssertionError(f"{name}: sent {sent!r}, got {reply!r}")
        self.log.setdefault(name, []).append((time.monotonic(), server))

    def _sync_client(self, name: str) -> None:
        client = BinaryStarClient(
            self.pair.fa, self.pair.fb, timeout=CLIENT_TIMEOUT, settle=SETTLE, patience=20
        )
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                sent = f"{name}-{n}".encode()
                self._record(name, sent, client.request(sent), client.server)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            client.close()

    def _async_client(self) -> None:
        async def run() -> None:
            client = AsyncBinaryStarClient(
                self.pair.fa, self.pair.fb, timeout=CLIENT_TIMEOUT, settle=SETTLE, patience=20
            )
            try:
                n = 0
                while not self.stop.is_set():
                    n += 1
                    sent = f"a-{n}".encode()
                    self._record("async", sent, await client.request(sent), client.server)
            finally:
                client.close()

        try:
            asyncio.run(run())
        except BaseException as exc:
            self.errors.append(exc)

    def served_by(self, endpoint: str, after: float) -> dict[str, float]:
        """Per client: the first success from `endpoint` after `after` (monotonic time)."""
        firsts: dict[str, float] = {}
        for name, entries in list(self.log.items()):
            for t, server in list(entries):
                if t > after and server == endpoint:
                    firsts[name] = t
                    break
        return firsts

    def finish(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(30)
        assert not self.errors, self.errors


@pytest.mark.timeout(120)
def test_primary_killed_under_load_clients_fail_over(pair: Pair) -> None:
    load = Load(pair)
    try:
        start = time.monotonic()
        wait_until(
            lambda: len(load.served_by(pair.fa, start)) == 3, START_TIMEOUT, "load on primary"
        )
        pair.primary.proc.kill()  # SIGKILL: no goodbye to anyone
        killed = time.monotonic()
        wait_until(
            lambda: len(load.served_by(pair.fb, killed)) == 3, 15, "every client on the backup"
        )
        delays = {n: t - killed for n, t in load.served_by(pair.fb, killed).items()}
        print(f"failover delays after SIGKILL: {delays}")
        assert max(delays.values()) < FAILOVER_BOUND, delays
        pair.backup.wait_line("STATE ACTIVE")
        assert query_state(pair.sb) == "ACTIVE"

        # The primary comes back: it must see the active backup and stand by, not take over.
        pair.primary.proc.wait(10)
        pair.primary = pair.start_primary()
        pair.primary.wait_line("STATE PASSIVE")
        assert query_state(pair.sa) == "PASSIVE"
        assert query_state(pair.sb) == "ACTIVE"
        resumed = time.monotonic()
        wait_until(
            lambda: len(load.served_by(pair.fb, resumed)) == 3, 15, "clients still on backup"
        )
        assert pair.backup.proc.poll() is None and pair.primary.proc.poll() is None
    finally:
        load.finish()


@pytest.mark.timeout(120)
def test_partition_without_clients_keeps_backup_passive(pair: Pair) -> None:
    pair.primary.proc.send_signal(signal.SIGSTOP)  # the primary goes silent
    try:
        # Hold well past the peer expiry (0.8 s): no client asks, so nobody may take over.
        hold_until = time.monotonic() + 4 * 2 * HEARTBEAT
        while time.monotonic() < hold_until:
            assert query_state(pair.sb) == "PASSIVE"
            time.sleep(0.1)
    finally:
        pair.primary.proc.send_signal(signal.SIGCONT)
    assert query_state(pair.sa, timeout=5) == "ACTIVE"
    assert query_state(pair.sb) == "PASSIVE"
    assert "STATE ACTIVE" not in pair.backup.lines
    # Still exactly one server serving, and it is the primary.
    client = BinaryStarClient(pair.fa, pair.fb, timeout=2.0, settle=SETTLE, patience=20)
    try:
        assert client.request(b"hello") == [b"hello"]
        assert client.server == pair.fa
    finally:
        client.close()
    assert pair.primary.proc.poll() is None and pair.backup.proc.poll() is None


@pytest.mark.timeout(120)
def test_dual_active_after_partition_is_fatal(pair: Pair) -> None:
    pair.primary.proc.send_signal(signal.SIGSTOP)
    try:
        # A client reaches only the backup: after the expiry it takes over, as designed.
        ctx = zmq.Context.instance()
        deadline = time.monotonic() + 15
        served = False
        while not served:
            assert time.monotonic() < deadline, "backup never took over"
            req = ctx.socket(zmq.REQ, linger=0)
            req.connect(pair.fb)
            req.send(b"anyone?")
            served = bool(req.poll(1000))
            req.close()
        pair.backup.wait_line("STATE ACTIVE")
    finally:
        pair.primary.proc.send_signal(signal.SIGCONT)
    # The partition heals with both active: at least one must see it and stop; never both up.
    wait_until(
        lambda: pair.primary.proc.poll() is not None or pair.backup.proc.poll() is not None,
        15,
        "a server to detect dual active",
    )
    exited = [s for s in (pair.primary, pair.backup) if s.proc.poll() is not None]
    for server in exited:
        assert server.proc.returncode == EXIT_FATAL
        server.wait_line("FATAL dual active or dual passive: exiting", 5)
