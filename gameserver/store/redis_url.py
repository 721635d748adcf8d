"""Redis URLs as redis-py takes them: a leaf module, shared by the store and the durability
check without an import circle."""

from __future__ import annotations


def redis_client_url(url: str) -> str:
    """A Redis URL as redis-py takes it: without our own ``prefix`` parameter, every other
    part as given (a ``unix:///path?db=1`` keeps its ``//`` and its ``db``, which a round trip
    through urllib would drop)."""
    base, _, query = url.partition("?")
    kept = [part for part in query.split("&") if part and part.split("=", 1)[0] != "prefix"]
    return base + ("?" + "&".join(kept) if kept else "")
