"""Redis store URLs as the README gives them, a Unix socket's included, against a real Redis."""

from __future__ import annotations

import pytest
import redis
from gamekit import RedisServer

from gameserver.durability import check_durable
from gameserver.store import StoreError, open_store, redis_client_url


@pytest.mark.parametrize(
    ("url", "client_url"),
    [
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://h:6379/2?prefix=game-a:", "redis://h:6379/2"),
        ("unix:///run/redis.sock?db=3&prefix=game-a:", "unix:///run/redis.sock?db=3"),
        ("unix:///run/redis.sock?prefix=x:&db=1", "unix:///run/redis.sock?db=1"),
        (
            "rediss://:pw@h:6380/0?prefix=x:&ssl_cert_reqs=none",
            "rediss://:pw@h:6380/0?ssl_cert_reqs=none",
        ),
    ],
)
def test_client_url_drops_only_our_prefix(url: str, client_url: str) -> None:
    assert redis_client_url(url) == client_url


def test_a_store_over_the_unix_socket_keeps_its_database_and_prefix(
    redis_server: RedisServer,
) -> None:
    url = redis_server.unix_url(db=5) + "&prefix=unix-game:"
    store = open_store(url)
    try:
        store.transaction(lambda tx: tx.put("notes", "first", {"by": "unix"}))
        assert store.read(lambda tx: tx.get("notes", "first")) == {"by": "unix"}
    finally:
        store.close()
    over_tcp = redis.Redis.from_url(redis_server.url(5))
    try:
        assert over_tcp.keys("{unix-game}:*"), "nothing written in database 5 under the prefix"
    finally:
        over_tcp.flushdb()
        over_tcp.close()


def test_the_durability_check_reads_redis_over_the_unix_socket(
    redis_server: RedisServer,
) -> None:
    # The suite's Redis keeps no append-only file: refused, unless the operator accepts it.
    with pytest.raises(StoreError, match="append"):
        check_durable(redis_server.unix_url(), allow_volatile=False)
    assert check_durable(redis_server.unix_url(), allow_volatile=True)
    with pytest.raises(StoreError, match="bad Redis URL"):
        check_durable("redis://host:port/0", allow_volatile=True)  # a port that is no number
