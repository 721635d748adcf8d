"""Fixtures for the terminal client's tests: a real server on fixed free ports (so it can be
restarted in place), an isolated XDG data dir, and helpers to wait with deadlines."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "game"))  # serverkit

from clientservers import Servers


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    yield started
    for server in started.started:
        server.kill_all()


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_DATA_HOME in a temp dir, for history files."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


Check = Callable[[], bool]
