"""Argon2id for new hashes; scrypt hashes made before it still log in, and are replaced."""

from __future__ import annotations

import hashlib
import secrets

from gamekit import FAST_PASSWORDS

from gameserver.accounts import login
from gameserver.passwords import PasswordPolicy
from gameserver.protocol import ErrorReply, LoginReply
from gameserver.store import Store
from gameserver.store.records import Account, PasswordHash, player_key
from gameserver.store.state import GameState
from gameserver.world import World


def scrypt_hash(password: str, n: int = 2**10) -> PasswordHash:
    """What the server stored before Argon2id."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return PasswordHash(salt=salt.hex(), hash=digest.hex(), n=n, r=8, p=1)


def stored_hash(store: Store, name: str) -> PasswordHash:
    account = store.transaction(lambda tx: GameState(tx).account(player_key(name)))
    assert account is not None
    return account.password


def test_new_hashes_are_argon2id_and_verify() -> None:
    stored = FAST_PASSWORDS.hash("correct horse")
    assert stored.phc.startswith("$argon2id$")
    assert FAST_PASSWORDS.verify("correct horse", stored)
    assert not FAST_PASSWORDS.verify("wrong horse", stored)
    assert not FAST_PASSWORDS.needs_rehash(stored)
    stronger = PasswordPolicy(memory_kib=16, time_cost=2, parallelism=1)
    assert stronger.verify("correct horse", stored)  # the costs travel with the hash
    assert stronger.needs_rehash(stored)


def test_a_malformed_or_empty_stored_hash_never_verifies() -> None:
    assert not FAST_PASSWORDS.verify("x", PasswordHash(phc="$argon2id$garbage"))
    assert not FAST_PASSWORDS.verify("x", PasswordHash())


def test_registration_stores_argon2id(store: Store, world: World) -> None:
    reply = login(store, world, "Ada", "secret-pw", passwords=FAST_PASSWORDS).reply
    assert isinstance(reply, LoginReply) and reply.created
    assert stored_hash(store, "Ada").phc.startswith("$argon2id$")


def test_an_old_scrypt_hash_logs_in_and_is_replaced(store: Store, world: World) -> None:
    old = scrypt_hash("old-password")
    key = player_key("Legacy")
    store.transaction(
        lambda tx: GameState(tx).put_account(
            Account(key=key, name="Legacy", password=old, created=0.0)
        )
    )
    refused = login(store, world, "Legacy", "not-it", passwords=FAST_PASSWORDS).reply
    assert isinstance(refused, ErrorReply) and refused.code == "bad_credentials"
    assert stored_hash(store, "Legacy") == old  # a failed login changes nothing

    reply = login(store, world, "Legacy", "old-password", passwords=FAST_PASSWORDS).reply
    assert isinstance(reply, LoginReply) and not reply.created
    fresh = stored_hash(store, "Legacy")
    assert fresh.phc.startswith("$argon2id$") and not fresh.salt
    # The new hash is the one that counts from now on.
    again = login(store, world, "Legacy", "old-password", passwords=FAST_PASSWORDS).reply
    assert isinstance(again, LoginReply)
    assert stored_hash(store, "Legacy") == fresh
    wrong = login(store, world, "Legacy", "not-it", passwords=FAST_PASSWORDS).reply
    assert isinstance(wrong, ErrorReply)
