"""Fixtures for the end-to-end tests: servers started on demand, stores of both kinds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))  # serverkit
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gameserver"))  # gamekit

from gamekit import REDIS_BINARY, RedisServer, start_redis
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
    if not Path(REDIS_BINARY).exists():
        pytest.skip(f"redis-server binary not found at {REDIS_BINARY}")
    server = None
    for _ in range(3):  # the free port may be taken between probing and binding
        try:
            server = start_redis()
            break
        except RuntimeError:
            continue
    if server is None:
        raise RuntimeError("could not start redis-server")
    yield server
    server.process.kill()  # by PID: Popen.kill signals exactly that process
    server.process.wait(timeout=10)
    server.log_reader.join(timeout=10)
    if server.process.stdout is not None:
        server.process.stdout.close()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'game.db'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(server.url(1))  # db 1: apart from other suites' db 0
    client.flushdb()
    client.close()
    return server.url(1)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'game.db'}"
