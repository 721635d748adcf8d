"""Fixtures shared by the engine tests: a sync context, and child interpreters killed by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import Spawn

import engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ctx() -> Iterator[engine.Context]:
    """A fresh sync context, destroyed with linger 0 afterwards."""
    context = engine.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start `python <args>` with the repository importable (text pipes for stdout and
    stderr); whatever is still running at teardown is killed by its PID."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
