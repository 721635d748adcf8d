"""Helpers for the relay tests: publisher and relay processes whose stdout lines tests wait on,
kernel byte counters from ``ss``, and in-process SUB subscribers.

Every process is killed by PID at teardown (`Procs.kill_all`); waits have deadlines.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import engine as zmq
import engine.asyncio as azmq

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISHER = Path(__file__).resolve().parent / "publisher.py"
#: Bound on one wait: generous for a loaded 2-core machine.
WAIT = 20.0
LOCAL = "tcp://127.0.0.1:0"
#: Every process started, so teardown kills each by PID even if its start-up check failed.
STARTED: list[Proc] = []


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), e.get("PYTHONPATH")]))
    e["PYTHONUNBUFFERED"] = "1"
    return e


class Proc:
    """A subprocess whose stdout lines are collected on a reader thread."""

    def __init__(self, args: list[str], log: Path) -> None:
        self._log = log.open("ab")
        self.killed = False
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            # A relay's own key and its known upstream keys stay in the test's directory.
            env={**env(), "XDG_DATA_HOME": str(log.parent / "xdg")},
            cwd=REPO_ROOT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        STARTED.append(self)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def count(self, pattern: str) -> int:
        with self._changed:
            return sum(1 for line in self.lines if re.search(pattern, line))

    def wait_for(self, pattern: str, n: int = 1, timeout: float = WAIT) -> re.Match[str]:
        """The ``n``-th line matching ``pattern``; fails at the deadline."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        with self._changed:
            while True:
                hits = [m for line in self.lines if (m := regex.search(line))]
                if len(hits) >= n:
                    return hits[n - 1]
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise AssertionError(f"never printed {pattern!r} x{n}: {self.lines[-20:]}")
                self._changed.wait(left)

    async def line(self, pattern: str, n: int = 1, timeout: float = WAIT) -> re.Match[str]:
        """`wait_for` without blocking the event loop (the in-process sockets live on it)."""
        return await asyncio.to_thread(self.wait_for, pattern, n, timeout)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        """SIGKILL by PID, then reap."""
        if self.killed:
            return
        self.killed = True
        try:
            os.kill(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(WAIT)
        self._reader.join(WAIT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass
        self._log.close()


class Publisher(Proc):
    def __init__(self, log: Path, bind: str = LOCAL, verbose: bool = False) -> None:
        super().__init__([str(PUBLISHER), "--bind", bind, *(["--verbose"] if verbose else [])], log)
        self.endpoint = self.wait_for(r"^bound (\S+)")[1]
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        self.wait_for("^ready")

    def command(self, line: str) -> None:
        """Run one command and wait until the publisher says it is done."""
        n = self.count(r"^sent ")
        self.send(line)
        self.wait_for(r"^sent ", n + 1)

    async def run(self, line: str) -> None:
        """`command` without blocking the event loop."""
        await asyncio.to_thread(self.command, line)


class Relay(Proc):
    """A `crossroads relay`. `secure=False` (the forwarding tests, fed by a bare Publisher):
    --insecure-players, so plain SUBs can read the region; the secure default is covered end to
    end with a real front in test_front_relay.py."""

    def __init__(
        self, log: Path, upstream: str, *extra: str, bind: str = LOCAL, secure: bool = False
    ) -> None:
        args = ["-m", "crossroads", "relay", "--upstream", upstream, "--bind", bind]
        args += ["--key-bind", LOCAL] if secure else ["--insecure-players"]
        super().__init__([*args, "--stats-bind", LOCAL, "--log-level", "DEBUG", *extra], log)
        self.endpoint = self.wait_for(r"^updates (\S+)")[1]
        self.stats_endpoint = self.wait_for(r"^stats (\S+)")[1]
        self.wait_for("^ready")
        actions = [line.split()[1] for line in self.lines if line.startswith("actions ")]
        self.actions = actions[0] if actions else None
        keys = [line.split() for line in self.lines if line.startswith("key ")]
        self.key_endpoint, self.key = (keys[0][1], keys[0][2].encode()) if keys else (None, None)

    def stats(self) -> dict:
        return json.loads(relay_stats(self.stats_endpoint, "--json"))

    async def astats(self) -> dict:
        return await asyncio.to_thread(self.stats)


def upstream_of(front: Any) -> list[str]:
    """Relay options for a served front (tests/game/serverkit.Server): its actions port, and
    where it announces its key (a system-chosen port, not the conventional one below)."""
    args = ["--actions-upstream", front.actions]
    if front.key_endpoint is not None:
        args += ["--upstream-key-endpoint", front.key_endpoint]
    return args


def relay_stats(*args: str) -> str:
    """Run `crossroads relay-stats` and return its stdout."""
    cmd = [sys.executable, "-m", "crossroads", "relay-stats", *args]
    done = subprocess.run(
        cmd, env=env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def kernel_bytes(port: int) -> tuple[int, bool]:
    """(bytes_acked summed over established TCP sockets whose local port is ``port``, whether
    any of them still has unacknowledged data): what the kernel says left that port."""
    out = subprocess.run(
        ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    acked = sum(int(n) for n in re.findall(r"bytes_acked:(\d+)", out))
    return acked, "unacked:" in out


async def settled_bytes(port: int, timeout: float = WAIT) -> int:
    """Bytes acked from ``port`` once nothing sent is waiting for its acknowledgement."""
    deadline = time.monotonic() + timeout
    while True:
        acked, pending = await asyncio.to_thread(kernel_bytes, port)
        if not pending:
            return acked
        assert time.monotonic() < deadline, f"data from port {port} never acknowledged"
        await asyncio.sleep(0.01)  # polling the kernel counter, bounded by the deadline


class Subscribers:
    """N SUB sockets on the running loop, each counting what it receives."""

    def __init__(self, ctx: azmq.Context, endpoint: str, topic: str, n: int) -> None:
        self.sockets = []
        for _ in range(n):
            s = ctx.socket(zmq.SUB)
            s.rcvhwm = 0
            s.connect(endpoint)
            s.setsockopt(zmq.SUBSCRIBE, topic.encode() + b"\0")
            self.sockets.append(s)
        self.received: list[list[list[bytes]]] = [[] for _ in range(n)]
        self._changed = asyncio.Event()
        self._tasks = [asyncio.create_task(self._read(i, s)) for i, s in enumerate(self.sockets)]

    async def _read(self, i: int, s: azmq.Socket) -> None:
        while True:
            self.received[i].append(await s.recv_multipart())
            self._changed.set()

    async def until(self, ok, timeout: float = WAIT) -> None:
        """Wait until ``ok(received_lists)`` holds; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while not ok(self.received):
            left = deadline - time.monotonic()
            assert left > 0, f"subscribers never got there: {[len(r) for r in self.received]}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    async def ready(self, pub: Publisher, topic: str, timeout: float = WAIT) -> None:
        """Probe until every subscriber gets a message (subscriptions are in place upstream)."""
        deadline = time.monotonic() + timeout
        while True:
            await pub.run(f"burst {topic} 1 1")
            try:
                await self.until(lambda r: all(r), 0.3)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise

    def reset(self) -> None:
        for r in self.received:
            r.clear()

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for s in self.sockets:
            s.close(0)
