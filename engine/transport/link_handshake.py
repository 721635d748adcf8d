"""A link's handshake and liveness: the ZAP verdict a handshake may wait for, its deadline,
the moment it completes (the pipe attached and announced), then heartbeats on the socket's
wheel; and the peer's address as a ZAP request names it.

`LinkHandshake` is the part of `ZMTPLink` (link.py) that runs before and beside the traffic,
apart because it is a concept of its own. It calls back into the link for what the traffic
part owns: `_room`, `_after_codec`, `_write`, `flush`, `abort` and `_protocol_failure`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from .. import constants as c
from ..options import heartbeat_timeout
from ..pipe import Pipe
from ..security.commands import ProtocolError
from ..security.zap import ZapRequest
from ..zmtp import HandshakeComplete, State, ZMTPConnection
from .heartbeats import HeartbeatWheel

log = logging.getLogger(__name__)

#: How libzmq names the host of an ipc peer in ZAP requests (glibc's getnameinfo for AF_UNIX).
IPC_HOST = "localhost"


class LinkHandshake:
    """ZAP, the handshake's end and deadline, and heartbeats: the state below is ZMTPLink's."""

    __slots__ = ()  # ZMTPLink declares the slots

    host: Any  # link.LinkHost
    owner: Any  # link.LinkOwner
    port: Any  # pipe.SocketPort
    loop: asyncio.AbstractEventLoop
    pipe: Pipe | None
    codec: ZMTPConnection | None
    ready: bool
    closed: bool
    aborted: bool
    last_recv: float
    _persistent_pipe: bool
    _ping_sent: float
    _next_ping: float
    _written_mark: int
    _peer_ttl: float
    _timer: asyncio.TimerHandle | None
    _zap_id: bytes | None
    _failure_reported: bool
    _shares_encoding: bool
    _peer_address: str

    def _ask_zap(self, request: ZapRequest) -> None:
        """The handshake waits for the ZAP handler's verdict (or goes on without one)."""
        request_id = self.host.zap_request(request, self._zap_answered)
        if request_id is None:
            self._codec_step(self.codec.zap_unavailable)
        else:
            self._zap_id = request_id

    def _zap_answered(self, frames: list[bytes] | None) -> None:
        request_id, self._zap_id = self._zap_id, None
        if self.closed or self.aborted or request_id is None:
            return
        codec = self.codec
        if frames is None:
            self._protocol_failure(
                ProtocolError("the ZAP handler went away", c.ProtocolErrorCode.ZAP_UNSPECIFIED)
            )
            return
        self._codec_step(lambda: codec.zap_reply(frames, request_id))

    def _codec_step(self, step: Callable[[], None]) -> None:
        """Advance the handshake outside a read (a ZAP answer), then act as after a read."""
        codec = self.codec
        try:
            step()
            # What arrived while the handshake waited is decoded now that it may be complete.
            msgs = codec.receive_data(b"", self._room()) if codec.state is State.TRAFFIC else []
        except ProtocolError as exc:
            self._fault(exc)
            return
        self._after_codec(msgs)

    def _fault(self, exc: ProtocolError) -> None:
        """The peer broke the protocol. When the fault came after its handshake, what the same
        bytes completed before it (the handshake itself, messages) is acted on first, as
        libzmq acts on each as it decodes it; then the connection closes."""
        if self.codec.state is State.TRAFFIC:
            self._after_codec(exc.completed)
            if self.closed or self.aborted:
                return
        self._protocol_failure(exc)

    def _handshake_done(self, event: HandshakeComplete) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        port = self.port
        pipe = self.pipe
        if pipe is None:
            pipe = port.new_pipe()
            pipe.routing_id = self.owner.routing_id
        pipe.identity = event.identity
        pipe.peer_address = self._peer_address
        pipe.properties = event.properties
        if not self._persistent_pipe and not port.accepts_peer(pipe):
            self.abort()
            return
        self.pipe = pipe
        pipe.link = self
        if not self._persistent_pipe:
            port.attach(pipe)
        self.ready = True
        self._shares_encoding = port.socket_type in (c.PUB, c.XPUB) and self.codec.cipher is None
        self.host.emit(c.EVENT_HANDSHAKE_SUCCEEDED, 0, self.owner.endpoint)
        self.owner.link_ready(self)
        opts = port.options
        if (opts.heartbeat_ivl > 0 and event.minor_version >= 1) or self._peer_ttl:
            self._start_heartbeats()
        self.flush()

    def _start_heartbeats(self) -> None:
        """Join the socket's heartbeat wheel; the first PING goes out HEARTBEAT_IVL from now."""
        ivl = self.port.options.heartbeat_ivl / 1000
        self._next_ping = self.loop.time() + ivl
        self._written_mark = self.pipe.written if self.pipe is not None else 0
        period = self._heartbeat_period()
        if period > 0:
            HeartbeatWheel.join(self, period)

    def _heartbeat_period(self) -> float:
        """How often this link is checked: often enough to notice the shortest of its three
        deadlines (PING interval, PING timeout, the peer's TTL) within half of it; 0: never."""
        opts = self.port.options
        ivl = opts.heartbeat_ivl / 1000
        periods = [p for p in (ivl, heartbeat_timeout(opts) / 1000, self._peer_ttl) if p > 0]
        if not periods or not (ivl > 0 or self._peer_ttl):
            return 0.0
        return min(periods) / 2

    def heartbeat(self, now: float) -> float:
        """The wheel's check: send a PING every HEARTBEAT_IVL; drop a peer that stays silent
        for too long. Returns the period this link wants next (0: leave the wheel)."""
        if self.closed:
            return 0.0
        opts = self.port.options
        ivl = opts.heartbeat_ivl / 1000
        unanswered = self._ping_sent and self.last_recv < self._ping_sent
        if unanswered and now - self._ping_sent >= heartbeat_timeout(opts) / 1000:
            log.debug("heartbeat timeout on %s", self.owner.endpoint)
            self.abort()
            return 0.0
        if self._peer_ttl and now - self.last_recv >= self._peer_ttl:
            log.debug("peer TTL expired on %s", self.owner.endpoint)
            self.abort()
            return 0.0
        due = ivl > 0 and not unanswered and now >= self._next_ping
        if due and self._alive_both_ways(now, ivl):
            self._next_ping = now + ivl
            due = False
        if due and self.codec.send_ping(opts.heartbeat_ttl // 100):
            self._write(self.codec.data_to_send())
            self._ping_sent = now
            self._next_ping = now + ivl
        return self._heartbeat_period()

    def _alive_both_ways(self, now: float, ivl: float) -> bool:
        """Whether the PING now due would prove nothing new: within the last interval the
        peer sent us something (RFC 37: any traffic is a sign of life) and we sent it a
        message (which resets, as any traffic does, a TTL our last PING gave it). A PING is
        a MAY; skipping these spares a sealed PING and its PONG, a system call each way,
        per interval on every busy link (a front's players who act). The gap between our
        sends stays under two intervals, so this holds only when our TTL, if any, allows
        that."""
        pipe = self.pipe
        if pipe is None:
            return False
        sent = pipe.written != self._written_mark
        self._written_mark = pipe.written  # the next interval counts from this check
        heard = now - self.last_recv < ivl
        ttl = self.port.options.heartbeat_ttl / 1000
        return sent and heard and (not ttl or ttl > 2 * ivl)

    def _handshake_expired(self) -> None:
        self._timer = None
        if not self.ready:
            log.debug("handshake on %s took longer than HANDSHAKE_IVL", self.owner.endpoint)
            self._report_failure(c.EVENT_HANDSHAKE_FAILED_NO_DETAIL, c.ETIMEDOUT)
            self.abort()

    def _report_failure(self, event: int, value: int) -> None:
        if not self._failure_reported:
            self._failure_reported = True
            self.host.emit(event, value, self.owner.endpoint)


def transport_fd(transport: asyncio.BaseTransport) -> int:
    """The connection's file descriptor, as libzmq's monitor events give it (0 if none)."""
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else 0


def peer_address(transport: asyncio.BaseTransport) -> str:
    """The peer as a ZAP request names it, as libzmq on Linux does: the IP address for tcp,
    and "localhost:uid:gid:pid" of the peer process for ipc (what getnameinfo says for a Unix
    socket, then SO_PEERCRED)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family == getattr(socket, "AF_UNIX", None):
        peercred = getattr(socket, "SO_PEERCRED", None)
        if peercred is None:
            return IPC_HOST
        try:
            pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, peercred, 12))
        except OSError:
            return IPC_HOST
        return f"{IPC_HOST}:{uid}:{gid}:{pid}"
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return ""
