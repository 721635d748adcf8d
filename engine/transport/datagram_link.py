"""A datagram endpoint (udp, pgm, epgm) as the link of one pipe, and as its endpoint handle.

There is no connection to make or lose: binding or connecting opens the session at once, and
the socket gets one pipe for the endpoint, which takes every message (`Pipe.takes_all`: a
multicast peer filters what it receives, nobody subscribes at the sender). Messages the socket
queues go to the session as it can take them (a PGM source paced by RATE takes them a packet's
worth at a time, so the rest waits in the pipe under SNDHWM, as in libzmq); what the session
reads goes to the socket, and reading pauses at RCVHWM until the socket catches up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from ..pipe import Message
from .link_roles import LinkHost


class Session(Protocol):
    """What a datagram session (UdpSession, PgmSession) offers its link."""

    #: Whether it sends what the socket queues (RADIO, DGRAM, a PGM source) or drops it
    #: (a DISH's joins, a SUB's subscriptions: nobody takes them).
    sends: bool
    #: Bytes taken and not yet on the wire (a PGM source waiting for its rate).
    unsent: int
    on_messages: Callable[[list[Message]], None] | None
    on_ready: Callable[[], None] | None

    def accept(self, outbox: deque[Message]) -> int:
        """Take from the front of `outbox` what it can send now; how many it took."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


class DatagramLink:
    """The LinkPort of a datagram endpoint's pipe, and its EndpointHandle."""

    def __init__(self, host: LinkHost, endpoint: str, session: Session) -> None:
        self.host = host
        self.port = host.port
        self.loop = host.loop
        self.endpoint = endpoint
        self.session = session
        pipe = self.port.new_pipe(persistent=True)
        pipe.takes_all = True
        pipe.link = self
        self.pipe = pipe
        self.closed = False
        self.closing = False
        self._linger_timer: Any = None
        self._ready_pending = False
        session.on_messages = self._deliver
        session.on_ready = self._on_ready
        host.links.add(self)
        self.port.attach(pipe)

    # -- LinkPort ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Hand the session what the socket queued, as much as it takes now."""
        pipe = self.pipe
        pipe.flush_pending = False
        if self.closed:
            return
        outbox = pipe.outbox
        if self.session.sends:
            taken = self.session.accept(outbox)
        else:
            taken = 0
            while outbox:  # nobody upstream takes a DISH's joins or a SUB's subscriptions
                outbox.popleft()
                taken += 1
        if taken:
            pipe.written += taken
            self.port.notify()
        if self.closing:
            self._maybe_finish()

    eager = False  # a write is a system call: bursts are batched (pipe.FlushQueue)

    def write_direct(self) -> bool:
        return False  # the session belongs to the loop: the loop flushes

    def write_burst(self, wait: bool = False) -> None:
        pass  # the loop's flush, already scheduled, moves them

    def resume_reading(self) -> None:
        pipe = self.pipe
        if pipe.read_paused and not self.closed and pipe.room() > 0:
            pipe.read_paused = False
            self.session.resume_reading()

    def close(self, drop_links: bool = True, linger_ms: int = 0) -> None:
        """LinkPort.close() and EndpointHandle.close(): end the session now. When the whole
        socket closes (drop_links False) the session ends instead through finish(LINGER)."""
        if drop_links:
            self.abort()

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = self.closing = True
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self.session.close()
        self.host.links.discard(self)
        pipe = self.pipe
        if pipe.link is self:
            pipe.link = None
        self.port.notify()

    def finish(self, linger_ms: int) -> None:
        """Close once what is queued has left (a PGM source sends at its rate), at most LINGER."""
        self.closing = True
        if linger_ms == 0:
            self.abort()
            return
        if linger_ms > 0:
            self._linger_timer = self.loop.call_later(linger_ms / 1000, self.abort)
        self.flush()
        self._maybe_finish()

    # -- the session's side --------------------------------------------------------------------

    def _deliver(self, messages: list[Message]) -> None:
        if self.closed or self.port.closed:
            return
        pipe = self.pipe
        self.port.deliver(pipe, messages)
        if pipe.room() <= 0:
            pipe.read_paused = True
            self.session.pause_reading()
            if pipe.room() > 0:  # the user side caught up meanwhile (see pipe.py)
                self.resume_reading()

    def _on_ready(self) -> None:
        """The session can take more: flush again, from the loop (never from inside a send)."""
        if self.pipe.outbox and not self._ready_pending:
            self._ready_pending = True
            self.loop.call_soon(self._flush_when_ready)

    def _flush_when_ready(self) -> None:
        self._ready_pending = False
        self.flush()

    def _maybe_finish(self) -> None:
        if not self.closed and not self.pipe.outbox and not self.session.unsent:
            self.abort()
