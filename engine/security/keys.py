"""CURVE keys and the optional PyNaCl (libsodium) dependency behind them.

The engine's core is standard-library only: PyNaCl is imported the first time CURVE is used,
and its absence is a clear error naming the extra that brings it (`crossroads[curve]`).
Keys are 32 octets; users write them as 40-character Z85 text (pyzmq's `curve_keypair` returns
that form), and every setter here accepts either.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from ..constants import EINVAL, ENOTSUP
from ..errors import ZMQError
from . import z85

KEY_SIZE = 32
Z85_KEY_SIZE = 40
MISSING_PYNACL = (
    "CURVE needs PyNaCl (libsodium), which is not installed: "
    "pip install 'crossroads[curve]' (or pip install pynacl)"
)

_bindings: ModuleType | None = None


def sodium() -> ModuleType:
    """PyNaCl's libsodium bindings, imported on first use; ZMQError(ENOTSUP) without them."""
    global _bindings
    if _bindings is None:
        try:
            import nacl.bindings
        except ImportError:
            raise ZMQError(ENOTSUP, MISSING_PYNACL) from None
        _bindings = nacl.bindings
    return _bindings


def sodium_cffi() -> tuple[Any, Any]:
    """(ffi, lib) of PyNaCl's libsodium, for the per-frame hot path (see curve_message)."""
    sodium()
    try:
        from nacl._sodium import ffi, lib
    except ImportError:
        raise ZMQError(ENOTSUP, "this PyNaCl has no libsodium handle (nacl._sodium)") from None
    return ffi, lib


def curve_available() -> bool:
    try:
        sodium()
    except ZMQError:
        return False
    return True


def key_bytes(key: bytes | str, what: str = "CURVE key") -> bytes:
    """A key as its 32 raw octets, from raw bytes or Z85 text (40 characters, or 41 with NUL)."""
    if isinstance(key, str):
        key = key.encode("ascii", "replace")
    raw = bytes(key)
    if len(raw) == Z85_KEY_SIZE + 1 and raw[-1:] == b"\x00":
        raw = raw[:-1]
    if len(raw) == Z85_KEY_SIZE:
        try:
            return z85.decode(raw)
        except ValueError:
            pass
    elif len(raw) == KEY_SIZE:
        return raw
    raise ValueError(f"a {what} is 32 bytes or 40 Z85 characters, not {len(raw)} bytes")


def curve_keypair() -> tuple[bytes, bytes]:
    """A new (public, secret) key pair, each as 40 bytes of Z85 text (as pyzmq returns)."""
    public, secret = sodium().crypto_box_keypair()
    return z85.encode(public), z85.encode(secret)


def curve_public(secret_key: bytes | str) -> bytes:
    """The Z85 public key that belongs to a secret key (given as Z85 or raw)."""
    try:
        secret = key_bytes(secret_key, "CURVE secret key")
    except ValueError as exc:
        if len(secret_key) == Z85_KEY_SIZE:  # as pyzmq: 40 characters, not Z85, is libzmq's
            raise ZMQError(EINVAL, str(exc)) from None
        raise  # (and a wrong length pyzmq's ValueError)
    return z85.encode(sodium().crypto_scalarmult_base(secret))


@functools.lru_cache(maxsize=16)
def public_of(secret: bytes) -> bytes:
    """The raw public key of a raw secret key (cached: a server derives it per connection)."""
    return sodium().crypto_scalarmult_base(secret)
