"""Password hashing with scrypt (memory-hard, in the standard library)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .store.records import PasswordHash

# 2**14 * 8 * 128 bytes = 16 MiB per hash: costly to brute-force, ~50 ms for a login.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
_KEY_BYTES = 32


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + 2**20,  # OpenSSL's default cap (32 MiB) would forbid larger n
        dklen=_KEY_BYTES,
    )


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> PasswordHash:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, r, p)
    return PasswordHash(salt=salt.hex(), hash=digest.hex(), n=n, r=r, p=p)


def verify_password(password: str, stored: PasswordHash) -> bool:
    digest = _scrypt(password, bytes.fromhex(stored.salt), stored.n, stored.r, stored.p)
    return hmac.compare_digest(digest, bytes.fromhex(stored.hash))
