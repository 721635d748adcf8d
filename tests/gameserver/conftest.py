"""Fixtures: real SQLite and Redis stores (each test runs on both), the default world, a fake
clock, and the in-process game harness from gamekit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from gamekit import (
    FAST_PASSWORDS,
    CountingConnection,
    FakeClock,
    Game,
    RedisServer,
    empty_store_url,
    running_redis,
)

from gameserver.seed import seed_world
from gameserver.service import GameService
from gameserver.store import Store, open_store
from gameserver.store.redis_backend import RedisStore
from gameserver.world import World, load_world


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store of each backend."""
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    return empty_store_url(request.param, tmp_path, server)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def counted_stores(redis_server: RedisServer, tmp_path: Path) -> Iterator[list[RedisStore]]:
    """Two workers' Redis stores on one empty database, each with its own connection (whose
    requests :class:`CountingConnection` counts) and its own copy."""
    url = empty_store_url("redis", tmp_path, redis_server)
    stores = []
    for _ in range(2):
        pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection)
        stores.append(RedisStore(url, client=redis.Redis(connection_pool=pool)))
    yield stores
    for store in stores:
        store.close()


@pytest.fixture(scope="session")
def world() -> World:
    return load_world()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: Store, world: World, clock: FakeClock) -> GameService:
    seed_world(store, world)
    return GameService(store, world, passwords=FAST_PASSWORDS, clock=clock)


@pytest.fixture
def game(service: GameService) -> Game:
    return Game(service)
