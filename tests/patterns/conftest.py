"""Shared helpers for the pattern tests: real subprocesses whose stdout lines can be awaited.

`procs` starts `python -m MODULE ...` with the repository on PYTHONPATH, collects each child's
output lines on a reader thread, and kills every child by PID at teardown (SIGCONT first, so a
SIGSTOPped one dies too). `Proc.wait_for` blocks on new lines until a pattern matches or a
deadline passes: tests wait on events, never on bare sleeps.
"""

from __future__ import annotations

import itertools
import os
import re
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

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "engine"))  # enginekit's ZAP handler
#: Default bound on any single wait. Generous: the machine may be busy with other suites.
WAIT = 15.0


class Proc:
    """A child process and every line it printed (stdout and stderr together)."""

    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.args = args
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        self.pid = self.popen.pid
        self.lines: list[str] = []
        self._cursor = 0
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """The first line after the previous match that matches `pattern` (re.search)."""
        return self.wait_all([pattern], timeout)[0]

    def wait_all(
        self, patterns: list[str], timeout: float = WAIT, *, from_start: bool = False
    ) -> list[re.Match[str]]:
        """Wait until each pattern matched a line after the previous match (or, `from_start`,
        any line so far), in any order."""
        regexes = [re.compile(p) for p in patterns]
        found: list[re.Match[str] | None] = [None] * len(regexes)
        deadline = time.monotonic() + timeout
        scan = 0 if from_start else self._cursor
        last = self._cursor - 1
        with self._cond:
            while True:
                while scan < len(self.lines):
                    line = self.lines[scan]
                    for i, regex in enumerate(regexes):
                        if found[i] is None and (match := regex.search(line)):
                            found[i] = match
                            last = scan
                            break
                    scan += 1
                if all(m is not None for m in found):
                    self._cursor = max(self._cursor, last + 1)
                    return [m for m in found if m is not None]
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    break
                self._cond.wait(min(left, 0.5))
        missing = [p for p, m in zip(patterns, found, strict=True) if m is None]
        output = "\n".join(self.lines[-40:])
        raise AssertionError(
            f"{self.args[:3]} (pid {self.pid}, exit {self.popen.poll()}) never printed "
            f"{missing!r}; last output:\n{output}"
        )

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.lines if regex.search(line))

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL by PID and reap."""
        self.signal(signal.SIGCONT)  # a stopped process must run to die of anything but KILL
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=WAIT)

    def stop(self, timeout: float = WAIT) -> int:
        """SIGTERM and wait for a clean exit; returns the exit status."""
        self.signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)


class ProcessGroup:
    """Children started by one test; all of them are killed when the test ends."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def spawn(self, module: str, *args: str) -> Proc:
        proc = Proc(["-m", module, *args])
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            try:
                proc.kill()
            except Exception:
                pass
        for proc in self.procs:
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()


@pytest.fixture
def procs() -> Iterator[ProcessGroup]:
    group = ProcessGroup()
    try:
        yield group
    finally:
        group.cleanup()


@pytest.fixture
def free_endpoint() -> Iterator[Callable[[], str]]:
    """Makes endpoints nobody has bound yet, for a client that must know its server's address
    before the server starts: ipc paths in a directory of this test's own. (A tcp port found
    free and released can be taken meanwhile by any connection's local port; one was, once,
    under CI's parallel run.) Short paths: a Unix socket's path is at most 107 bytes."""
    directory = tempfile.mkdtemp(prefix="pat-")
    names = itertools.count(1)
    try:
        yield lambda: f"ipc://{directory}/{next(names)}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
