"""Is the store durable? Redis with its default settings keeps the world in memory only.

A Redis without its append-only file loses, when it restarts, every action acknowledged since
its last snapshot, and the accounts with them, so existing names can be registered again by
anyone. `crossroads serve` and `crossroads worker` therefore ask Redis (CONFIG GET) at start and
refuse a non-durable one unless the operator says --allow-volatile-store. SQLite commits to
disk in every transaction and needs no check.
"""

from __future__ import annotations

import logging

from .store import StoreError, redis_client_url, shown_url

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
ADVICE = (
    "run redis-server with --appendonly yes (the compose file does), "
    "or pass --allow-volatile-store to accept losing data on a Redis restart"
)


MISSING_REDIS = "the Redis store needs the 'redis' extra: pip install 'crossroads[redis]'"


def check_durable(url: str, allow_volatile: bool) -> list[str]:
    """Warnings about the store's durability; raises StoreError for a volatile Redis unless
    `allow_volatile`. Only Redis URLs are checked."""
    if not url.startswith(REDIS_SCHEMES):
        return []
    try:
        import redis
    except ImportError:
        raise StoreError(MISSING_REDIS) from None

    try:
        client = redis.Redis.from_url(redis_client_url(url), socket_timeout=5)
    except ValueError as exc:
        raise StoreError(f"bad Redis URL {shown_url(url)!r}: {exc}") from None
    try:
        settings = client.config_get("append*")
    except redis.ResponseError:
        # CONFIG renamed or disabled (managed Redis): we cannot see; say so, do not refuse.
        return [f"cannot read Redis's persistence settings (CONFIG is disabled); {ADVICE}"]
    except redis.RedisError as exc:
        raise StoreError(f"cannot check Redis durability: {exc}") from None
    finally:
        client.close()
    warnings = []
    if settings.get("appendonly") != "yes":
        problem = (
            "Redis is not append-only (appendonly no): a restart loses acknowledged actions and "
            "accounts"
        )
        if not allow_volatile:
            raise StoreError(f"{problem}; {ADVICE}")
        warnings.append(f"{problem} (--allow-volatile-store given)")
    elif settings.get("appendfsync") == "no":
        warnings.append(
            "Redis appendfsync is 'no': a machine crash may lose the last ~30 s of actions"
        )
    return warnings
