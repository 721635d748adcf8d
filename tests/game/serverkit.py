"""Helpers for the end-to-end game tests: a real `crossroads serve` in a subprocess, a real
redis-server, and running async scenarios from plain tests.

`Server` collects the serve process's stdout lines on a reader thread (endpoints, worker PIDs,
``ready``) so tests wait on lines with deadlines, never on bare sleeps. Every PID it ever saw
(front and workers, replacements included) is killed at teardown, SIGCONT first.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import engine
from client.session import GameSession, SyncGameSession
from engine.patterns.paranoid_pirate import PPP_READY
from engine.utils.monitor import recv_monitor_message
from gameserver.known_hosts import KnownHosts, server_key
from gameserver.ping import ping
from gameserver.protocol import LoginReply
from gameserver.store import open_store
from gameserver.store.state import GameState

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Bound on one wait. Generous: a 2-core machine, other suites running at the same time.
WAIT = 30.0
LOCAL = "tcp://127.0.0.1:0"
#: The password of the player `play_while_intruders_wait` logs in.
PLAYER_PASSWORD = "alice-secret-password"


class Server:
    """One `crossroads serve` process and what it printed."""

    def __init__(self, store_url: str, log_path: Path, workers: int = 2, *extra: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        # The cluster's keys (made by serve on first run) stay in the test's own directory.
        env["CROSSROADS_KEYS_DIR"] = str(log_path.parent / "keys")
        # The suites' Redis keeps no files (it is thrown away): tests accept that explicitly;
        # tests/game/test_served_durability.py checks the refusal itself.
        env.setdefault("CROSSROADS_ALLOW_VOLATILE_STORE", "true")
        args = ["--workers", str(workers), "--store", store_url, "--log-level", "INFO"]
        args += ["--actions-bind", LOCAL, "--updates-bind", LOCAL, "--workers-bind", LOCAL]
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "serve", *args, *extra],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=REPO_ROOT,
            text=True,
        )
        self.lines: list[str] = []
        self.worker_pids: list[int] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.actions = self.wait_for(r"^actions (\S+)")[1]
        self.updates = self.wait_for(r"^updates (\S+)")[1]
        self.wait_for(r"^ready")
        # Secure player ports (the default) print where the front announces its key.
        announced = [m for line in self.lines if (m := re.match(r"^key (\S+)", line))]
        self.key_endpoint: str | None = announced[0][1] if announced else None
        self.known_hosts = KnownHosts(log_path.parent / "known_hosts")
        self._key: bytes | None = None

    @property
    def key(self) -> bytes | None:
        """The front's key as a player learns it: the announcement, trusted on first use and
        pinned in this test's own known-hosts file (None: --insecure-players). Learnt once per
        server: hundreds of sessions need not ask hundreds of times."""
        if self.key_endpoint is not None and self._key is None:
            self._key = server_key(
                self.actions, known_hosts=self.known_hosts, key_endpoint=self.key_endpoint
            )
        return self._key

    def client_context(self) -> engine.Context:
        """A sync context whose sockets are CURVE clients of this front, as any outsider who
        asked the public announcement can be (the hostile tests' attackers included)."""
        context = engine.Context()
        key = self.key
        if key is not None:
            context.curve_serverkey = key
            context.curve_publickey, context.curve_secretkey = engine.curve_keypair()
        return context

    def ping(self, timeout: float = WAIT) -> dict[str, object]:
        return ping(self.actions, timeout, server_key=self.key)

    def key_args(self) -> list[str]:
        """Options that tell a command (play, ping, admin) where this front announces its key,
        and a known-hosts file of this test's own."""
        if self.key_endpoint is None:
            return []
        return ["--key-endpoint", self.key_endpoint, "--known-hosts", str(self.known_hosts.path)]

    def client_args(self) -> list[str]:
        """`crossroads play`/`admin` options that find this front and its key."""
        return ["--server", self.actions, "--updates", self.updates, *self.key_args()]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                match = re.search(r"^worker \S+ \w+: pid (\d+)", line)
                if match:
                    self.worker_pids.append(int(match[1]))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = WAIT, start: int = 0) -> re.Match[str]:
        """The first line (from index ``start``) matching ``pattern``; fails at the deadline."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._changed:
            while True:
                for line in self.lines[start:]:
                    if match := regex.search(line):
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"serve never printed {pattern!r}: {self.lines}")
                self._changed.wait(left)

    def session(self, **options: Any) -> GameSession:
        options.setdefault("server_key", self.key)
        return GameSession(self.actions, self.updates, **options)

    def sync_session(self, **options: Any) -> SyncGameSession:
        options.setdefault("server_key", self.key)
        return SyncGameSession(self.actions, self.updates, **options)

    def stop(self, timeout: float = WAIT) -> int:
        """Graceful stop (SIGTERM); returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill_all(self) -> None:
        """Kill the front and every worker it reported, by PID (SIGCONT first)."""
        for pid in [self.process.pid, *self.worker_pids]:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
        self.process.wait(WAIT)
        self._reader.join(WAIT)
        # A serve killed outright leaves its local worker port's private directory behind.
        local = [m for line in self.lines if (m := re.match(r"^local ipc://(\S+)/workers", line))]
        for match in local:
            shutil.rmtree(match[1], ignore_errors=True)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def intruding_worker(
    context: engine.Context, endpoint: str, **credentials: Any
) -> tuple[engine.Socket, engine.Socket]:
    """A Paranoid Pirate worker announcing itself on `endpoint` with these socket options (its
    credentials, if any), and its monitor: the hostile tests' would-be workers."""
    sock = context.socket(engine.DEALER)
    sock.linger = 0
    for name, value in credentials.items():
        setattr(sock, name, value)
    monitor = sock.get_monitor_socket()
    sock.connect(endpoint)
    try:
        sock.send_multipart([PPP_READY], engine.NOBLOCK)
    except engine.Again:
        pass  # refused already: a protocol error ends the connection, pipe and all (libzmq's way)
    return sock, monitor


#: The monitor events that end a handshake, one way or the other.
HANDSHAKE_ENDS = {
    engine.EVENT_HANDSHAKE_SUCCEEDED,
    engine.EVENT_HANDSHAKE_FAILED_AUTH,
    engine.EVENT_HANDSHAKE_FAILED_PROTOCOL,
    engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
}


def handshake_events(monitor: engine.Socket, timeout: float = WAIT) -> set[int]:
    """Monitor events until a handshake has ended (failed or succeeded); fails at the deadline."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while not seen & HANDSHAKE_ENDS:
        assert time.monotonic() < deadline, f"no handshake ended: {seen}"
        if monitor.poll(100):
            seen.add(recv_monitor_message(monitor)["event"])
    return seen


def play_while_intruders_wait(
    server: Server,
    keyless: tuple[engine.Socket, engine.Socket],
    wrong_key: tuple[engine.Socket, engine.Socket],
) -> None:
    """A player logs in and looks while two would-be workers (`intruding_worker`) wait for a
    job: the one with wrong credentials is refused by the ZAP handler, the one with none fails
    its handshake, neither receives a byte, and the front counts the refusal."""
    with server.sync_session() as alice:
        assert isinstance(alice.login("Alice", PLAYER_PASSWORD), LoginReply)
        for _ in range(3):
            alice.act("look")
    refused = handshake_events(wrong_key[1])
    assert engine.EVENT_HANDSHAKE_FAILED_AUTH in refused
    assert engine.EVENT_HANDSHAKE_SUCCEEDED not in refused
    assert engine.EVENT_HANDSHAKE_SUCCEEDED not in handshake_events(keyless[1])
    for sock, _ in (keyless, wrong_key):
        assert not sock.poll(0), "a process without the key received something"
    health = server.ping()
    assert health["refused_keys"] >= 1


#: The ``start_server(store_url, workers=2, *flags)`` fixture.
StartServer = Callable[..., Server]


def run(coro: Coroutine[Any, Any, T], timeout: float = 90.0) -> T:
    """Run an async scenario from a plain test, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def read_state(store_url: str, fn: Any) -> Any:
    """Run ``fn(GameState)`` in a transaction of a fresh connection to the shared store."""
    with open_store(store_url) as store:
        return store.transaction(lambda tx: fn(GameState(tx)))
