"""The roles around a stream link: the socket side it reports to (`LinkHost`), the listener or
connecter it belongs to (`LinkOwner`), and how it ends (`LinkEnding`, shared by ZMTP and raw
STREAM links).

They are declared here, below both kinds of link, so each names what it relies on (libzmq's
`i_pipe_events` shape) and neither link module imports the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from .. import constants as c
from ..options import Options
from ..pipe import SocketPort
from ..security.zap import ZapRequest
from .heartbeats import HeartbeatWheel


class LinkHost(Protocol):
    """A socket's transport side, as its links see it (engine.transport.Endpoints)."""

    port: SocketPort
    loop: asyncio.AbstractEventLoop
    #: The socket's user side runs on the loop's thread (the asyncio face): no locks needed.
    same_thread: bool
    #: Live connections: closing and term() wait for them.
    links: set[Any]
    #: The socket's heartbeat wheels, one per check period (heartbeats.HeartbeatWheel).
    heartbeats: dict[float, HeartbeatWheel]

    def emit(self, event: int, value: int, endpoint: str) -> None:
        """Report a monitor event."""

    def zap_request(
        self, request: ZapRequest, on_reply: Callable[[list[bytes] | None], None]
    ) -> bytes | None:
        """Ask the context's ZAP handler; the request id, or None when none is bound."""

    def zap_cancel(self, request_id: bytes) -> None:
        """Forget a request whose connection is gone."""


class LinkOwner(Protocol):
    """The listener or connecter a link belongs to."""

    endpoint: str
    #: CONNECT_ROUTING_ID given for this connection (connect side), else b"".
    routing_id: bytes
    #: The socket's options as they were at bind() or connect(): each connection's security
    #: mechanism comes from these (libzmq's rule), so one socket may bind a CURVE endpoint
    #: and then, with other options, a PLAIN one.
    security: Options

    def link_made(self, link: Any) -> None:
        """A connection is open (no handshake yet); `link.fd` is its descriptor."""

    def link_ready(self, link: Any) -> None:
        """Its handshake is done: the link's pipe carries messages."""

    def link_lost(self, link: Any) -> None:
        """The connection is over; a connecter may dial again."""


class LinkEnding:
    """How a stream link ends, ZMTP or raw (STREAM): gracefully (what the transport holds is
    written first), or at once."""

    __slots__ = ()  # the links declare the slots
    closed: bool
    closing: bool
    aborted: bool
    ready: bool
    write_paused: bool
    transport: asyncio.Transport | None
    host: LinkHost
    owner: LinkOwner
    lost: asyncio.Future[None]
    #: The connection's descriptor, for the monitor's events (libzmq gives it; 0 before).
    fd: int
    #: A HANDSHAKE_FAILED_* event went out for it (a raw link has no handshake: never).
    _failure_reported: bool
    #: It ended on a protocol error: bytes that break ZMTP (a malformed or oversized frame,
    #: a mechanism mismatch) or an ERROR command from the peer (a ZAP refusal). libzmq ends
    #: the connecting session then and never redials (a raw link: never).
    protocol_failed: bool
    #: This side ended it (disconnect, unbind, close): libzmq reports DISCONNECTED only for a
    #: connection that failed or that the peer ended, never for one its own socket ended.
    ended_here: bool

    def flush(self) -> None:
        raise NotImplementedError

    def end_here(self) -> None:
        """Its socket ends the connection now (disconnect, unbind, close with no linger)."""
        self.ended_here = True
        self.abort()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.flush()

    def _gone(self) -> None:
        """The connection is over (its pipe dealt with): tell the monitor, the owner, and
        whoever waits on `lost`."""
        if (self.ready or self._failure_reported) and not self.ended_here:
            # libzmq reports DISCONNECTED after a failed handshake too, the failure first.
            self.host.emit(c.EVENT_DISCONNECTED, self.fd, self.owner.endpoint)
        self.owner.link_lost(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closing = True
            self.transport.close()

    def abort(self) -> None:
        if not self.closed and self.transport is not None:
            self.closing = self.aborted = True
            self.transport.abort()
