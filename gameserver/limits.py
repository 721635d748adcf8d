"""Limits on every socket the front and the relays bind: what one hostile peer may cost.

Each bound socket gets a largest message (MAXMSGSIZE: a bigger frame closes that connection
before it is buffered), a cap on connections held at once (MAX_CONNECTIONS), a handshake that
must finish in seconds (HANDSHAKE_IVL), and heartbeats that close a peer which stops answering
(HEARTBEAT_IVL/TIMEOUT; every 10 s on a player port). The updates port also caps each peer's
subscriptions (MAX_SUBSCRIPTIONS), since every subscription is memory the publisher keeps.
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
#: A player port PINGs each connection every 10 s and closes one silent for 3 PINGs' worth
#: (no PONG, nothing else). Every connection costs a PING and a PONG (each sealed, one system
#: call each way) per interval whether its player plays or not: at 5,000 players online, 2 s
#: was a fifth of the front's CPU (py-spy), and 10 s took the 5,000-player row's p99 from
#: 125-163 ms to 77-97 ms. A dead peer whose TCP never closed (a client that lost power)
#: holds its slot 40 s at most. --player-heartbeat changes it.
DEFAULT_PLAYER_HEARTBEAT_S = 10.0
#: Connections the kernel may complete before the front accepts them (listen()'s backlog;
#: libzmq's and the engine's default is 100). When players reconnect at once (a front or relay
#: restarted, a network blip), connections past the backlog lose their SYN and retry after 1 s,
#: then 3 s. 3,000 connecting at once were all in after 1.51 s with 100, 0.47 s with this
#: (CURVE: 2.78 s and 1.06 s; `crossroads bench storm`, README). The engine still accepts at
#: most ACCEPT_BATCH a loop pass, so players already in wait little longer for it. The kernel
#: caps it at net.core.somaxconn (4096 since Linux 5.4; 128 before: silently cut).
LISTEN_BACKLOG = 4096
#: Silent heartbeat intervals after which a peer is closed.
HEARTBEAT_MISSES = 3
#: The worker port's PINGs only close connections that went silent altogether: a worker's
#: liveness is the Paranoid Pirate heartbeat's (every second both ways, expired after 3). At
#: 2 s they were a wake-up of the front and of each worker every 2 s for nothing (idle front
#: 14 wake-ups a second in all, README "An idle server sleeps"); at 10 s a worker's
#: dead connection lingers 30 s at most, holding one of MAX_WORKER_CONNECTIONS.
WORKER_HEARTBEAT_S = 10.0


@dataclass(frozen=True)
class SocketLimits:
    """The knobs an operator may turn (serve's --max-connections / --max-subscriptions)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS
    heartbeat_s: float = DEFAULT_PLAYER_HEARTBEAT_S


def limit_bound(
    sock: Any,
    max_message: int,
    max_connections: int,
    heartbeat_s: float = DEFAULT_PLAYER_HEARTBEAT_S,
) -> None:
    """Limits for any socket bound where strangers can connect."""
    sock.setsockopt(engine.MAXMSGSIZE, max_message)
    sock.setsockopt(engine.MAX_CONNECTIONS, max_connections)
    # No more waiting in the kernel than may be held at once (0: no cap on connections).
    backlog = min(LISTEN_BACKLOG, max_connections) if max_connections > 0 else LISTEN_BACKLOG
    sock.setsockopt(engine.BACKLOG, backlog)
    sock.setsockopt(engine.HANDSHAKE_IVL, HANDSHAKE_IVL_MS)
    interval_ms = max(1, round(heartbeat_s * 1000))
    sock.setsockopt(engine.HEARTBEAT_IVL, interval_ms)
    sock.setsockopt(engine.HEARTBEAT_TIMEOUT, interval_ms * HEARTBEAT_MISSES)


def limit_publisher(sock: Any, limits: SocketLimits) -> None:
    """An XPUB for players or relays: subscription-sized messages, capped per peer."""
    limit_bound(sock, MAX_SUBSCRIPTION_BYTES, limits.max_connections, limits.heartbeat_s)
    sock.setsockopt(engine.MAX_SUBSCRIPTIONS, limits.max_subscriptions)


def limit_front(
    actions: Any, updates: Any, workers: Any, limits: SocketLimits, max_request: int
) -> None:
    """The front's three sockets, before they bind."""
    limit_bound(actions, max_request, limits.max_connections, limits.heartbeat_s)
    limit_publisher(updates, limits)
    limit_bound(workers, MAX_WORKER_MESSAGE_BYTES, MAX_WORKER_CONNECTIONS, WORKER_HEARTBEAT_S)
