"""Limits on every socket the front and the relays bind: what one hostile peer may cost.

Each bound socket gets a largest message (MAXMSGSIZE: a bigger frame closes that connection
before it is buffered), a cap on connections held at once (MAX_CONNECTIONS), a handshake that
must finish in seconds (HANDSHAKE_IVL), and heartbeats that close a peer which stops answering
(HEARTBEAT_IVL/TIMEOUT). The updates port also caps each peer's subscriptions
(MAX_SUBSCRIPTIONS), since every subscription is memory the publisher keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import engine

#: A subscription is 1 byte plus a topic ("room.<id>", "priv.<32 hex>"): far below 1 KiB.
MAX_SUBSCRIPTION_BYTES = 1024
#: A worker's answer carries the reply and its events; a few MiB is far above any real one.
MAX_WORKER_MESSAGE_BYTES = 8 * 1024 * 1024
#: A player needs 3 topics (world, room, private); a relay one per topic its region reads,
#: so a region of ~1000 players needs --max-subscriptions raised.
DEFAULT_MAX_SUBSCRIPTIONS = 1024
#: Connections per bound player socket; each costs a file descriptor and buffers.
DEFAULT_MAX_CONNECTIONS = 4096
#: Workers are few; a flood of connections to the worker port must not exhaust descriptors.
MAX_WORKER_CONNECTIONS = 1024
#: Seconds a new connection has to finish its greeting and handshake (libzmq's default: 30).
HANDSHAKE_IVL_MS = 5_000
#: Every 2 s a PING; a peer silent for 6 s (no PONG, nothing else) is closed.
HEARTBEAT_IVL_MS = 2_000
HEARTBEAT_TIMEOUT_MS = 6_000


@dataclass(frozen=True)
class SocketLimits:
    """The knobs an operator may turn (serve's --max-connections / --max-subscriptions)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS


def limit_bound(sock: Any, max_message: int, max_connections: int) -> None:
    """Limits for any socket bound where strangers can connect."""
    sock.setsockopt(engine.MAXMSGSIZE, max_message)
    sock.setsockopt(engine.MAX_CONNECTIONS, max_connections)
    sock.setsockopt(engine.HANDSHAKE_IVL, HANDSHAKE_IVL_MS)
    sock.setsockopt(engine.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(engine.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)


def limit_publisher(sock: Any, limits: SocketLimits) -> None:
    """An XPUB for players or relays: subscription-sized messages, capped per peer."""
    limit_bound(sock, MAX_SUBSCRIPTION_BYTES, limits.max_connections)
    sock.setsockopt(engine.MAX_SUBSCRIPTIONS, limits.max_subscriptions)


def limit_front(
    actions: Any, updates: Any, workers: Any, limits: SocketLimits, max_request: int
) -> None:
    """The front's three sockets, before they bind."""
    limit_bound(actions, max_request, limits.max_connections)
    limit_publisher(updates, limits)
    limit_bound(workers, MAX_WORKER_MESSAGE_BYTES, MAX_WORKER_CONNECTIONS)
