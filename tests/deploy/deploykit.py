"""Helpers for the deployment tests: a `crossroads compose-local --json` process whose status
line tells each service's PIDs and local endpoints, and what both the compose-local and the
Docker tests do with a running stack (wait for workers, two players who hear each other).

Stdout lines are collected on a reader thread, so tests wait on lines with deadlines. Teardown
stops compose-local with SIGTERM (it stops its services), then SIGKILLs every PID it reported.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client.session import GameSession
from engine.patterns.lazy_pirate import RequestFailed
from gameserver.known_hosts import KnownHosts, server_key
from gameserver.ping import ping
from gameserver.protocol import Event

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
#: Bound on start-up: redis, front, 3 workers and 2 relays on a loaded 2-core machine.
START_WAIT = 60.0
#: Bound on one wait for the game (a reply, an event, the workers' count).
WAIT = 30.0


def clean_env() -> dict[str, str]:
    """This environment without CROSSROADS_* (the compose defaults apply) and with the repo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSROADS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ComposeLocal:
    """One `crossroads compose-local --json` process and its parsed status."""

    def __init__(self, compose_file: Path, workdir: Path, *extra: str) -> None:
        self._log = (workdir / "compose-local.log").open("ab")
        argv = ["compose-local", "--json", "--file", str(compose_file), *extra]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crossroads", *argv],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=clean_env(),
            cwd=workdir,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.status: dict[str, Any] = {}

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first stdout line matching ``pattern``; fails at the deadline or on exit."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._changed:
            while True:
                for line in self.lines:
                    if match := regex.search(line):
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise AssertionError(
                        f"compose-local never printed {pattern!r}: {self.lines}; "
                        f"the end of its stderr: {self.stderr_tail()!r}"
                    )
                self._changed.wait(left)

    def stderr_tail(self, size: int = 2000) -> str:
        """The last ``size`` characters compose-local wrote to stderr (why it stopped)."""
        self._log.flush()
        text = Path(self._log.name).read_text(errors="replace")
        return text[-size:]

    def wait_ready(self, timeout: float = START_WAIT) -> dict[str, Any]:
        """The status JSON, once every health check passed."""
        self.status = json.loads(self.wait_for(r"^\{.*\}$", timeout)[0])
        self.wait_for(r"^ready", timeout)
        return self.status

    def endpoint(self, service: str, port: int) -> str:
        return str(self.status["services"][service]["endpoints"][str(port)])

    def pids(self, service: str) -> list[int]:
        return [int(p) for p in self.status["services"][service]["pids"]]

    def all_pids(self) -> list[int]:
        return [pid for name in self.status.get("services", {}) for pid in self.pids(name)]

    def teardown(self) -> None:
        """SIGTERM compose-local (it stops and reaps its services); if it did not finish that,
        SIGKILL it and every PID it reported (after a clean stop the PIDs may be reused)."""
        clean = False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                clean = self.process.wait(30) == 0
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pid in [] if clean else self.all_pids():
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def kind(k: str, text: str = "") -> Callable[[Event], bool]:
    """An event predicate: events of kind ``k`` whose text contains ``text``."""
    return lambda e: e.kind == k and text in e.text


def learn_key(actions: str, key_endpoint: str, known_hosts: Path) -> bytes:
    """A CURVE server's key as a player's client learns it: announced, trusted on first use,
    pinned in ``known_hosts`` (gameserver/known_hosts.py)."""
    key = server_key(actions, known_hosts=KnownHosts(known_hosts), key_endpoint=key_endpoint)
    assert key is not None, f"{key_endpoint} announces no key"
    return key


def wait_workers(
    actions: str, count: int, timeout: float = WAIT, server_key: bytes | None = None
) -> None:
    """Until the front reports ``count`` connected workers (deadline-bounded ping loop)."""
    deadline = time.monotonic() + timeout
    seen: object = None
    while time.monotonic() < deadline:
        try:
            seen = ping(actions, timeout=2.0, server_key=server_key).get("workers")
        except RequestFailed:
            seen = None
        if seen == count:
            return
        time.sleep(0.1)  # polling pace; the deadline bounds the wait
    raise AssertionError(f"front never reported {count} workers (last: {seen})")


async def meet(alice: GameSession, bob: GameSession) -> None:
    """Log both in (the same room) and check each hears the other."""
    await alice.login("Alice", "alice-password")
    await bob.login("Bob", "bob-password")
    await alice.wait_for(kind("arrive", "Bob appears"), WAIT)
    await chat(alice, bob, "hello")


async def chat(alice: GameSession, bob: GameSession, tag: str) -> None:
    """One exchange each way: every say is a job for some worker, every hearing an event."""
    assert (await bob.act(f"say {tag}, Alice")).ok
    await alice.wait_for(kind("say", f'Bob says, "{tag}, Alice"'), WAIT)
    assert (await alice.act(f"say {tag}, Bob")).ok
    await bob.wait_for(kind("say", f'Alice says, "{tag}, Bob"'), WAIT)
