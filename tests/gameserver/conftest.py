"""Fixtures: real SQLite and Redis stores (each test runs on both), the default world, a fake
clock, and the in-process game harness from gamekit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from gamekit import FAST_SCRYPT_N, REDIS_BINARY, FakeClock, Game, RedisServer, start_redis

from gameserver.seed import seed_world
from gameserver.service import GameService
from gameserver.store import Store, open_store
from gameserver.world import World, load_world


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
    server.process.kill()
    server.process.wait(timeout=10)
    server.log_reader.join(timeout=10)  # ends at EOF, now that the server is gone
    if server.process.stdout is not None:
        server.process.stdout.close()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'game.db'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(server.url())
    client.flushdb()
    client.close()
    return server.url()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture(scope="session")
def world() -> World:
    return load_world()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: Store, world: World, clock: FakeClock) -> GameService:
    seed_world(store, world)
    return GameService(store, world, scrypt_n=FAST_SCRYPT_N, clock=clock)


@pytest.fixture
def game(service: GameService) -> Game:
    return Game(service)
