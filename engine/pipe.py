"""Pipes: the queues between a socket and one peer, with high-water marks.

A socket's user side (the application thread, or the asyncio task) and its connections (on the
I/O loop) may run on different threads, so every counter here has exactly one writer: the user
side writes `queued` and `consumed`, the connection writes `written` and `delivered`. Reads of
the other side's counter can only be stale, never torn, and each wait re-checks after arming its
wake-up, so no notification is lost.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connection import PeerLink


class Pipe:
    """Messages for one peer (outbox) plus flow control for messages from it."""

    __slots__ = (
        "closed",
        "consumed",
        "delivered",
        "flush_pending",
        "identity",
        "kick",
        "link",
        "outbox",
        "peer_type",
        "persistent",
        "queued",
        "rcvhwm",
        "read_paused",
        "routing_id",
        "schedule_flush",
        "sndhwm",
        "subscriptions",
        "written",
    )

    def __init__(
        self, sndhwm: int, rcvhwm: int, kick: Any, schedule_flush: Any, persistent: bool = False
    ) -> None:
        self.outbox: deque[list[bytes]] = deque()
        self.queued = 0  # messages the user side has put in outbox
        self.written = 0  # messages the link has taken from outbox
        self.delivered = 0  # messages the link has handed to the socket
        self.consumed = 0  # messages the user side has taken from what was delivered
        self.sndhwm = sndhwm if sndhwm > 0 else 1 << 62
        self.rcvhwm = rcvhwm if rcvhwm > 0 else 1 << 62
        #: Schedules a call on the I/O loop: call_soon, or call_soon_threadsafe across threads.
        self.kick = kick
        #: Queues the link for the socket's next flush pass (one loop wake-up per batch).
        self.schedule_flush = schedule_flush
        self.link: PeerLink | None = None
        self.flush_pending = False
        self.read_paused = False
        self.closed = False
        #: A connect-side pipe outlives its connections, so messages sent before the peer is up
        #: (or while it reconnects) wait here, as in libzmq without IMMEDIATE.
        self.persistent = persistent
        self.routing_id = b""
        self.identity = b""
        self.peer_type = -1
        #: The topics this peer subscribed to (publisher side only).
        self.subscriptions: set[bytes] | None = None

    # -- user side ----------------------------------------------------------------------------

    def has_room(self) -> bool:
        return self.queued - self.written < self.sndhwm and not self.closed

    def can_send(self) -> bool:
        """Room below the high-water mark, and either connected or willing to queue."""
        return (
            self.queued - self.written < self.sndhwm
            and not self.closed
            and (self.link is not None or self.persistent)
        )

    def offer(self, msg: list[bytes]) -> bool:
        """push() if the pipe can take the message now; the hot path of every send."""
        if (
            self.queued - self.written >= self.sndhwm
            or self.closed
            or (self.link is None and not self.persistent)
        ):
            return False
        self.outbox.append(msg)
        self.queued += 1
        if not self.flush_pending:
            self._request_flush()
        return True

    def push(self, msg: list[bytes]) -> None:
        """Queue one message for the peer, whatever the high-water mark says."""
        self.outbox.append(msg)
        self.queued += 1
        if not self.flush_pending:
            self._request_flush()

    def _request_flush(self) -> None:
        # Once per batch: the link takes everything queued when it flushes.
        link = self.link
        if link is not None:
            self.flush_pending = True
            self.schedule_flush(link)

    def credit(self, count: int) -> None:
        """The user side finished `count` delivered messages: the link may read again."""
        self.consumed += count
        if self.read_paused:
            link = self.link
            if link is not None:
                self.kick(link.resume_reading)

    # -- link side ----------------------------------------------------------------------------

    def backlog(self) -> int:
        return self.delivered - self.consumed

    def __repr__(self) -> str:
        return f"<Pipe rid={self.routing_id!r} out={self.queued - self.written}>"


class ConflatingPipe(Pipe):
    """CONFLATE: a new message replaces the unsent one instead of waiting behind it."""

    __slots__ = ()

    def offer(self, msg: list[bytes]) -> bool:
        if self.closed or (self.link is None and not self.persistent):
            return False
        outbox = self.outbox
        while outbox:
            try:
                outbox.popleft()
            except IndexError:  # the link took it meanwhile
                break
            self.queued -= 1
        self.push(msg)
        return True
