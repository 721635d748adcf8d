"""Names of the PUB/SUB topics events are published on, and who may read which.

* ``world`` - everyone: shouts, logins, the clock.
* ``room.<id>`` - everyone in that room: arrivals, departures, speech, takes.
* ``priv.<32 hex>`` - one session: whispers and notices. The name derives from the session token
  by a one-way hash, so knowing a player's name (or seeing their events) never reveals it.
"""

from __future__ import annotations

import hashlib

WORLD_TOPIC = "world"
ROOM_PREFIX = "room."
PRIVATE_PREFIX = "priv."


def room_topic(room_id: str) -> str:
    """Topic for events visible to everyone in ``room_id``."""
    return f"{ROOM_PREFIX}{room_id}"


def private_topic(token: str) -> str:
    """Secret per-session topic; the domain prefix keeps it distinct from other token hashes."""
    digest = hashlib.sha256(b"topic:" + token.encode()).hexdigest()
    return f"{PRIVATE_PREFIX}{digest[:32]}"


def session_topics(room_id: str, token: str) -> list[str]:
    """Every topic a session in ``room_id`` should be subscribed to."""
    return [WORLD_TOPIC, room_topic(room_id), private_topic(token)]


def may_read(topic: str, room_id: str, own_private_topic: str) -> bool:
    """Whether a session in ``room_id`` may catch up on ``topic``."""
    return topic in (WORLD_TOPIC, room_topic(room_id), own_private_topic)
