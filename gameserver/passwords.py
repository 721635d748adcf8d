"""Password hashing: Argon2id (argon2-cffi) for every new hash; old scrypt hashes still verify
and are replaced by Argon2id at their owner's next login.

The cost is deliberate: OWASP's Argon2id floor, in the one of its five equal-strength
configurations that costs least here (7 MiB, 5 passes, 1 lane: about 32 ms of one core).
Logins are therefore admitted a few at a time by the front (gameserver.logins), so a flood of
registrations queues behind its own kind and never in front of the players' actions.
argon2-cffi releases the GIL while hashing: the worker's heartbeats go on meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from .store.records import PasswordHash

__all__ = ["DEFAULT_POLICY", "PasswordPolicy", "hash_password", "verify_password"]

#: OWASP's Password Storage Cheat Sheet lists five Argon2id configurations that give "an equal
#: level of defense", trading memory for passes (47 MiB x 1 ... 7 MiB x 5). Measured on the
#: 2-core VM (15 hashes each, median; two processes hashing at once): 19 MiB x 2 took 38.8 ms
#: (41-54 ms side by side), 7 MiB x 5 took 31.9 ms (32-41 ms): the smallest block fits the
#: last-level cache. So the last: less CPU and less memory per login for the same defense.
#: Hashes made with other costs are replaced at their owner's next login (needs_rehash).
DEFAULT_MEMORY_KIB = 7 * 1024
DEFAULT_TIME_COST = 5
DEFAULT_PARALLELISM = 1


@dataclass(frozen=True)
class PasswordPolicy:
    """How new hashes are made (Argon2id with these costs), and which stored ones are stale."""

    memory_kib: int = DEFAULT_MEMORY_KIB
    time_cost: int = DEFAULT_TIME_COST
    parallelism: int = DEFAULT_PARALLELISM
    _hasher: PasswordHasher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hasher = PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=self.parallelism,
            type=Type.ID,
        )
        object.__setattr__(self, "_hasher", hasher)

    def hash(self, password: str) -> PasswordHash:
        return PasswordHash(phc=self._hasher.hash(password))

    def verify(self, password: str, stored: PasswordHash) -> bool:
        if not stored.phc:
            return _verify_scrypt(password, stored)
        try:
            return self._hasher.verify(stored.phc, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: PasswordHash) -> bool:
        """A scrypt hash, or an Argon2 one with other costs than this policy's."""
        return not stored.phc or self._hasher.check_needs_rehash(stored.phc)


DEFAULT_POLICY = PasswordPolicy()


def hash_password(password: str, policy: PasswordPolicy = DEFAULT_POLICY) -> PasswordHash:
    return policy.hash(password)


def verify_password(
    password: str, stored: PasswordHash, policy: PasswordPolicy = DEFAULT_POLICY
) -> bool:
    return policy.verify(password, stored)


def _verify_scrypt(password: str, stored: PasswordHash) -> bool:
    """A hash made before Argon2id: scrypt with the parameters stored beside it."""
    if not (stored.salt and stored.hash and stored.n > 1):
        return False
    digest = hashlib.scrypt(
        password.encode(),
        salt=bytes.fromhex(stored.salt),
        n=stored.n,
        r=stored.r,
        p=stored.p,
        maxmem=256 * stored.n * stored.r + 2**20,  # OpenSSL's default cap forbids larger n
        dklen=len(stored.hash) // 2,
    )
    return hmac.compare_digest(digest, bytes.fromhex(stored.hash))
