"""Who runs the game: admin roles, bans and maintenance mode, kept in the shared store.

* **Admins** are accounts with the admin role (``crossroads admin grant NAME`` writes it straight
  to the store, which only an operator can reach). In the game, only they may use the admin
  commands (:mod:`gameserver.commands.admin`).
* **Bans** keep a player out: a banned name cannot log in (it is told why), and a ban ends the
  player's live session.
* **Maintenance** closes the game to everyone but admins: new logins are refused with the time to
  come back, and the players online are sent away when it begins.

Each check is one or two key reads in the login's own path (a login already costs a ~50 ms
scrypt); ordinary actions pay nothing, because bans and maintenance end live sessions instead.
"""

from __future__ import annotations

from typing import Any

from .protocol import ErrorReply
from .store.base import Store
from .store.records import Record, player_key
from .store.state import GameState

_ROLE = "role"
_BAN = "ban"
_MAINTENANCE_KEY = "maintenance"
ADMIN = "admin"


class ModerationError(Exception):
    """An operator's request that cannot be done (no such account...); one line."""


class Ban(Record):
    reason: str
    by: str
    at: float


class Maintenance(Record):
    until: str  # as the admin wrote it ("14:00 UTC", "in an hour"): shown to players as is
    message: str
    by: str
    at: float


# -- reads and writes inside a transaction ---------------------------------------------------------


def is_admin(state: GameState, key: str) -> bool:
    role: Any = state.tx.get(_ROLE, key)
    return isinstance(role, dict) and role.get(ADMIN) is True


def set_admin(state: GameState, key: str, admin: bool) -> None:
    if admin:
        state.tx.put(_ROLE, key, {ADMIN: True})
    else:
        state.tx.delete(_ROLE, key)


def ban_of(state: GameState, key: str) -> Ban | None:
    raw = state.tx.get(_BAN, key)
    return None if raw is None else Ban.model_validate(raw)


def put_ban(state: GameState, key: str, ban: Ban) -> None:
    state.tx.put(_BAN, key, ban.model_dump())


def lift_ban(state: GameState, key: str) -> None:
    state.tx.delete(_BAN, key)


def maintenance(state: GameState) -> Maintenance | None:
    raw = state.meta(_MAINTENANCE_KEY)
    return None if not raw else Maintenance.model_validate(raw)


def set_maintenance(state: GameState, value: Maintenance | None) -> None:
    state.put_meta(_MAINTENANCE_KEY, None if value is None else value.model_dump())


# -- the login's gate ------------------------------------------------------------------------------


def refusal(state: GameState, name: str) -> ErrorReply | None:
    """Why ``name`` may not log in now, or None."""
    key = player_key(name)
    ban = ban_of(state, key)
    if ban is not None:
        why = f": {ban.reason}" if ban.reason else "."
        return ErrorReply(code="forbidden", message=f"You are banned from this game{why}")
    closed = maintenance(state)
    if closed is not None and not is_admin(state, key):
        text = f"The game is closed for maintenance until {closed.until}."
        if closed.message:
            text += f" {closed.message}"
        # Not "unavailable": clients retry that for seconds, and a closed game stays closed.
        return ErrorReply(code="forbidden", message=text)
    return None


def login_refusal(store: Store, name: str) -> ErrorReply | None:
    """:func:`refusal` in a transaction of its own (called before a login's scrypt)."""
    return store.transaction(lambda tx: refusal(GameState(tx), name))


# -- what the operator's shell does directly ------------------------------------------------------


def grant(store: Store, name: str, admin: bool = True) -> str:
    """Give (or take) the admin role; returns the account's spelling of the name. Raises
    ModerationError when no such account exists (the player must have logged in once)."""
    key = player_key(name)

    def change(tx: Any) -> str:
        state = GameState(tx)
        account = state.account(key)
        if account is None:
            raise ModerationError(f"no account named {name!r} (log in once to create it)")
        set_admin(state, key, admin)
        return account.name

    return store.transaction(change)


def summary(store: Store) -> dict[str, Any]:
    """Players online and the maintenance state, for ``crossroads admin status``."""

    def read(tx: Any) -> dict[str, Any]:
        state = GameState(tx)
        closed = maintenance(state)
        return {
            "players_online": len(state.online_players()),
            "maintenance": None if closed is None else closed.model_dump(),
        }

    return store.transaction(read)
