"""RawLink: one STREAM connection, bytes both ways with no ZMTP (libzmq's raw engine).

The link side of sockets/raw_stream.py. A connection gets its pipe at once (there is no
handshake to wait for), and the socket learns of it, and of its end, by an empty message
when STREAM_NOTIFY is on. Each read is delivered as it came, one message; each message the
socket queues is written as it is, and an empty one closes the connection after what was
queued before it. Like ZMTPLink it sees the socket only through the pipe's SocketPort.
Reading stops at RCVHWM, as on every link: a peer that floods is held by TCP, not memory.
"""

from __future__ import annotations

import asyncio
from typing import cast

from .. import constants as c
from ..pipe import Pipe, take_front
from .link_handshake import peer_address, transport_fd
from .link_roles import LinkEnding, LinkHost, LinkOwner


class RawLink(LinkEnding, asyncio.Protocol):
    """One raw connection of a STREAM socket (either end: accepted or connected)."""

    def __init__(self, host: LinkHost, owner: LinkOwner, pipe: Pipe | None = None) -> None:
        # (pipe: the connecter's factory passes it to every link; a STREAM socket queues
        # nothing before a connection, so there is never a pipe to carry over.)
        self.host = host
        self.port = host.port
        self.owner = owner
        self.loop = host.loop
        self.pipe: Pipe | None = None
        self.transport: asyncio.Transport | None = None
        self.fd = 0
        self.ready = False
        self._failure_reported = False  # no handshake to fail
        self.protocol_failed = False  # no protocol to break
        self.ended_here = False
        self.closed = False
        self.closing = False
        self.aborted = False
        self.write_paused = False
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self._linger_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.fd = transport_fd(transport)
        self.owner.link_made(self)
        self.host.links.add(self)
        port = self.port
        pipe = port.new_pipe()
        pipe.routing_id = self.owner.routing_id
        try:
            pipe.peer_address = peer_address(transport)
        except (ValueError, OSError):
            pipe.peer_address = ""
        if not port.accepts_peer(pipe):  # its CONNECT_ROUTING_ID is in use
            self.abort()
            return
        self.pipe = pipe
        pipe.link = self
        port.attach(pipe)
        self.ready = True
        self.host.emit(c.EVENT_HANDSHAKE_SUCCEEDED, 0, self.owner.endpoint)
        self.owner.link_ready(self)
        if port.options.stream_notify:
            port.deliver(pipe, [[b""]])

    def data_received(self, data: bytes) -> None:
        pipe = self.pipe
        if pipe is None or self.closing:
            return
        self.port.deliver(pipe, [[data]])
        if pipe.room() <= 0:
            pipe.read_paused = True
            self.transport.pause_reading()
            if pipe.room() > 0:  # the user side caught up meanwhile (see pipe.py)
                self.resume_reading()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self.host.links.discard(self)
        port = self.port
        pipe = self.pipe
        if pipe is not None and pipe.link is self:
            pipe.link = None
            port.forget_peer(pipe)
            # The peer went (not this side's empty message): tell the socket, as libzmq does.
            if port.options.stream_notify and not self.closing:
                port.deliver(pipe, [[b""]])
            port.detach(pipe)
        self._gone()

    # -- called through the pipe ----------------------------------------------------------------

    def flush(self) -> None:
        """Write what the socket queued; an empty message closes the connection there."""
        pipe = self.pipe
        if pipe is None:
            return
        pipe.flush_pending = False
        if self.write_paused or self.closed or not self.ready:
            return
        # Only the loop flushes a raw link (write_direct and write_burst leave it to the
        # loop), so no lock guards the byte order.
        outbox = pipe.outbox
        n = len(outbox)
        if not n:
            return
        batch = take_front(outbox, n)
        pipe.written += n
        chunks: list[bytes] = []
        for msg in batch:
            data = msg[0]
            if not data:  # close, once what came before is written
                self._write(chunks)
                self.closing = True
                outbox.clear()
                self.transport.close()
                break
            chunks.append(data)
        else:
            self._write(chunks)
        self.port.notify()

    def _write(self, chunks: list[bytes]) -> None:
        if chunks:
            self.transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    eager = False  # a write is a system call: bursts are batched (pipe.FlushQueue)

    def write_direct(self) -> bool:
        return False  # the loop writes: the caller schedules a flush

    def write_burst(self, wait: bool = False) -> None:
        pass  # the flush the loop has scheduled takes the burst

    def resume_reading(self) -> None:
        pipe = self.pipe
        if pipe is None or not pipe.read_paused or self.closed or pipe.room() <= 0:
            return
        pipe.read_paused = False
        self.transport.resume_reading()

    # -- closing --------------------------------------------------------------------------------

    def finish(self, linger_ms: int) -> None:
        """Close once queued bytes are written, waiting at most LINGER (-1: no limit)."""
        self.closing = self.ended_here = True
        if linger_ms == 0 or self.pipe is None:
            self.abort()
            return
        if linger_ms > 0:
            self._linger_timer = self.loop.call_later(linger_ms / 1000, self.abort)
        self.flush()
        if not self.closed:
            self.transport.close()  # writes out what the transport still buffers, then closes

    def __repr__(self) -> str:
        return f"<RawLink {self.owner.endpoint} closed={self.closed}>"
