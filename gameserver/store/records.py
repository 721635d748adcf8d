"""Typed records kept in the store, and how item locations are spelled."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict

ROOM_LOCATION = "room:"
PLAYER_LOCATION = "player:"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PasswordHash(Record):
    """A password's hash. ``phc`` is Argon2id in the PHC string format (its parameters
    inside); hashes made before it are scrypt's output plus its parameters (salt, hash, n, r,
    p), verified once more and replaced at their owner's next login (gameserver.passwords)."""

    phc: str = ""
    salt: str = ""
    hash: str = ""
    n: int = 0
    r: int = 0
    p: int = 0


class Account(Record):
    key: str
    name: str
    password: PasswordHash
    created: float


class SessionRecord(Record):
    """Stored under the hash of the token: a leaked database does not leak live tokens.

    An ended session is kept until it expires so that a retried action of the session (say a
    ``quit`` whose reply was lost) still finds its stored result instead of "unauthorized".
    """

    key: str
    player: str
    private_topic: str
    created: float
    expires_at: float
    ended: bool = False

    def is_live(self, now: float) -> bool:
        return not self.ended and now < self.expires_at


class PlayerRecord(Record):
    key: str
    name: str
    room: str
    online: bool = False
    session: str | None = None
    private_topic: str | None = None


class NpcRecord(Record):
    room: str
    step: int = 0


class ClockRecord(Record):
    turn: int
    phase: str


class ActionRecord(Record):
    """The stored outcome of an applied action; ``text_digest`` detects a reused action id."""

    text_digest: str
    reply: dict[str, Any]
    events: list[dict[str, Any]]


def player_key(name: str) -> str:
    """Names are unique regardless of case; the record keeps the chosen spelling."""
    return name.lower()


def session_key(token: str) -> str:
    return hashlib.sha256(b"session:" + token.encode()).hexdigest()


def room_location(room_id: str) -> str:
    return f"{ROOM_LOCATION}{room_id}"


def player_location(key: str) -> str:
    return f"{PLAYER_LOCATION}{key}"
