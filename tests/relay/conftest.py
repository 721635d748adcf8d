"""Fixtures for the relay tests: processes started on demand and killed by PID at teardown."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # relaykit

import relaykit
from relaykit import Publisher, Relay


@pytest.fixture(autouse=True)
def _kill_started() -> Iterator[None]:
    """Kill (by PID) every process a test started, whatever happened."""
    yield
    while relaykit.STARTED:
        relaykit.STARTED.pop().kill()


@pytest.fixture
def publisher(tmp_path: Path) -> Callable[..., Publisher]:
    n = iter(range(1000))
    return lambda **kw: Publisher(tmp_path / f"pub{next(n)}.log", **kw)


@pytest.fixture
def relay(tmp_path: Path) -> Callable[..., Relay]:
    n = iter(range(1000))
    return lambda *a, **kw: Relay(tmp_path / f"relay{next(n)}.log", *a, **kw)
