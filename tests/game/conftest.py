"""Fixtures for the end-to-end tests: servers started on demand, stores of both kinds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # serverkit
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gameserver"))  # gamekit
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "peers"))  # logkit

from gamekit import RedisServer, empty_store_url, running_redis
from serverkit import Server, StartServer


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(store_url, workers=2, *flags)``: a running serve, killed at teardown."""
    started: list[Server] = []

    def start(store_url: str, workers: int = 2, *extra: str) -> Server:
        server = Server(store_url, tmp_path / f"serve{len(started)}.log", workers, *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill_all()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of each backend (Redis db 1: apart from other suites' db 0)."""
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    return empty_store_url(request.param, tmp_path, server, db=1)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'game.db'}"
