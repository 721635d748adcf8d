"""Shared game state: a backend-neutral transactional store plus the game's typed view of it.

``open_store(url)`` picks the backend from the URL scheme:

* ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (embedded default)
* ``redis://host:port/db`` (optionally ``?prefix=name:``), ``rediss://`` for TLS, or
  ``unix:///path/redis.sock?db=N`` for a Redis on this machine's Unix socket; needs the
  ``redis`` package
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from .base import DEFAULT_EVENT_LOG_SIZE, Store, StoreBusy, StoreError, Tx, WriteInRead
from .redis_url import redis_client_url

SQLITE_SCHEME = "sqlite:///"

__all__ = [
    "DEFAULT_EVENT_LOG_SIZE",
    "Store",
    "StoreBusy",
    "StoreError",
    "Tx",
    "WriteInRead",
    "open_store",
    "redis_client_url",
    "shown_url",
]


def shown_url(url: str) -> str:
    """``url`` fit for banners and logs: a password (redis://:PASSWORD@host) shows as ***, and
    a relative SQLite path (three slashes: sqlite:///game.db) shows where it lands, since
    `sqlite:///srv/game.db` is easily meant as /srv but opens srv/game.db here."""
    if url.startswith(SQLITE_SCHEME):
        path = url[len(SQLITE_SCHEME) :]
        if path and not os.path.isabs(path):
            return f"{url} (relative: {os.path.abspath(path)}; sqlite://// + an absolute path)"
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def open_store(url: str, *, event_log_size: int = DEFAULT_EVENT_LOG_SIZE) -> Store:
    """Open the store named by ``url``; raises :class:`StoreError` for unknown schemes."""
    if url.startswith(SQLITE_SCHEME):
        from .sqlite_backend import SqliteStore

        path = url[len(SQLITE_SCHEME) :]
        if not path:
            raise StoreError("sqlite URL needs a path: sqlite:///game.db")
        return SqliteStore(path, event_log_size=event_log_size)
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from .redis_backend import RedisStore
        except ImportError as exc:
            raise StoreError(
                "the Redis store needs the 'redis' extra: pip install 'crossroads[redis]'"
            ) from exc
        return RedisStore(url, event_log_size=event_log_size)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise StoreError(f"unknown store URL scheme {scheme!r}: use sqlite:///path or redis://host")
