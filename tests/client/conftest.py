"""Fixtures for the terminal client's tests: a real server on fixed free ports (so it can be
restarted in place), an isolated XDG data dir, and helpers to wait with deadlines."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "game"))  # serverkit

from serverkit import Server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Servers:
    """Starts ``crossroads serve`` on fixed ports; every one started is killed at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = f"sqlite:///{tmp_path / 'game.db'}"
        self.tmp_path = tmp_path
        ports = [free_port() for _ in range(3)]
        self.flags = [
            f"--{what}-bind=tcp://127.0.0.1:{port}"
            for what, port in zip(("actions", "updates", "workers"), ports, strict=True)
        ]
        self.started: list[Server] = []

    def start(self) -> Server:
        log = self.tmp_path / f"serve{len(self.started)}.log"
        server = Server(self.store, log, 1, *self.flags)
        self.started.append(server)
        return server


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
