"""SocketCore: what every socket type shares, free of any blocking or threading policy.

The user side calls `send`, `recv` and `events`, which never block: they return False/None when
the operation would block, and the sync and asyncio faces decide how to wait. Links on the I/O
loop call `deliver`, `attach`, `detach` and `notify`. Pipe membership changes travel from the
loop to the user side as commands, so the per-type routing state has a single owner.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

from .. import constants as c
from ..errors import ZMQError
from ..options import Options
from ..pipe import ConflatingPipe, Pipe

if TYPE_CHECKING:
    import asyncio

    from ..context import IOContext

Message = list[bytes]

#: Flush requests closer together than this (seconds) mean a burst: batch them on the loop.
#: A loop pass or a thread hand-off costs about this much, so batching pays below it.
EAGER_WRITE_GAP = 50e-6
Monitor = Callable[[int, int, str], None]


class SocketCore:
    """Endpoints, pipes and the queues of delivered messages for one socket."""

    socket_type: int = -1
    #: Connect-side pipes exist before the peer does (messages queue), unless IMMEDIATE is set.
    queues_before_connect = True
    #: Messages arriving through this socket's links carry the peer's routing id first (ROUTER).
    routing_prefix = False
    #: Only one peer at a time (PAIR).
    single_peer = False
    #: After a reconnect, what was queued is dropped and the subscriptions sent anew (SUB/XSUB).
    resends_subscriptions = False

    def __init__(self, context: IOContext, loop: asyncio.AbstractEventLoop, same_thread: bool):
        self.context = context
        self.loop = loop
        self.kick = loop.call_soon if same_thread else loop.call_soon_threadsafe
        self._same_thread = same_thread
        self._last_flush_request = 0.0
        self.options = Options()
        self.pipes: list[Pipe] = []
        self.closed = False
        self.last_endpoint = ""
        self.monitor: Monitor | None = None
        self.endpoints: dict[str, Any] = {}  # endpoint string -> Listener or Connecter
        self.links: set[Any] = set()  # live connections (loop side)
        # Written by links on the loop, read by the user side.
        self._in: deque[tuple[Pipe, list[Message]]] = deque()
        self._commands: deque[tuple[Callable[[Pipe], None], Pipe]] = deque()
        self._armed = False
        self._wake: Callable[[], None] = _nothing
        self._dirty: deque[Any] = deque()  # links with messages to write
        # User side: the batch being read and its pipe.
        self._batch: list[Message] | tuple[()] = ()
        self._pos = 0
        self._batch_pipe: Pipe | None = None
        self._prefetched: Message | None = None

    # -- wake-ups -----------------------------------------------------------------------------

    def set_waker(self, wake: Callable[[], None]) -> None:
        """The face's way to be woken: set an eventfd, resolve a future..."""
        self._wake = wake

    def arm(self) -> None:
        """Ask for one wake-up at the next change; the caller must re-check before waiting."""
        self._armed = True

    def notify(self) -> None:
        """Loop side: something changed that may let a blocked send or recv proceed."""
        if self._armed:
            self._armed = False
            self._wake()

    # -- flushing -----------------------------------------------------------------------------

    def schedule_flush(self, link: Any) -> None:
        """User side: `link` has new messages; one loop callback serves a whole batch of them.

        A message that follows a quiet spell is written at once (on the loop's thread, or from
        the user's thread when the link is idle): a request/reply exchange then costs no extra
        loop pass or thread hand-off. In a burst (flush requests less than EAGER_WRITE_GAP
        apart) messages wait for the loop and leave in batches.
        """
        dirty = self._dirty
        now = monotonic()
        quiet = now - self._last_flush_request > EAGER_WRITE_GAP
        self._last_flush_request = now
        if quiet and not dirty:
            if self._same_thread:
                link.flush()
                return
            if link.write_direct():  # from the user's thread: only if the link is idle
                return
        dirty.append(link)
        if len(dirty) == 1:
            self.kick(self.flush_dirty)

    def flush_dirty(self) -> None:
        """Loop side (or the asyncio face just before it waits): write out what is queued."""
        dirty = self._dirty
        while dirty:
            try:
                link = dirty.popleft()
            except IndexError:
                return
            link.flush()

    # -- loop side ----------------------------------------------------------------------------

    def new_pipe(self, persistent: bool = False) -> Pipe:
        opts = self.options
        if opts.conflate:
            # Never stop reading: each delivery replaces what is queued (see deliver).
            return ConflatingPipe(1, 0, self.kick, self.schedule_flush, persistent)
        return Pipe(opts.sndhwm, opts.rcvhwm, self.kick, self.schedule_flush, persistent)

    def deliver(self, pipe: Pipe, batch: list[Message]) -> None:
        """A link hands over messages from its peer, one read's worth at a time."""
        if self.options.conflate:
            self._in.clear()
            batch = batch[-1:]
        self._in.append((pipe, batch))
        pipe.delivered += len(batch)
        if self._armed:
            self._armed = False
            self._wake()

    def attach(self, pipe: Pipe) -> None:
        self._commands.append((self._attach, pipe))
        self.notify()

    def detach(self, pipe: Pipe) -> None:
        pipe.closed = True
        self._commands.append((self._detach, pipe))
        self.notify()

    def reattach(self, pipe: Pipe) -> None:
        """A persistent pipe got a fresh connection (a reconnect)."""
        self._commands.append((self._reconnected, pipe))
        self.notify()

    def accepts_peer(self, pipe: Pipe) -> bool:
        """Loop side, at handshake: may this peer join? (ROUTER checks routing ids.)"""
        return not (self.single_peer and any(not p.closed for p in self.pipes))

    def forget_peer(self, pipe: Pipe) -> None:
        """Loop side: the peer's connection is gone."""

    def emit(self, event: int, value: int, endpoint: str) -> None:
        monitor = self.monitor
        if monitor is not None:
            monitor(event, value, endpoint)

    # -- user side: commands from the loop ------------------------------------------------------

    def process_commands(self) -> None:
        commands = self._commands
        while commands:
            handler, pipe = commands.popleft()
            handler(pipe)

    def _attach(self, pipe: Pipe) -> None:
        if pipe not in self.pipes:
            self.pipes.append(pipe)
        self.pipe_attached(pipe)

    def _detach(self, pipe: Pipe) -> None:
        if pipe in self.pipes:
            self.pipes.remove(pipe)
            self.pipe_detached(pipe)

    def _reconnected(self, pipe: Pipe) -> None:
        self.pipe_reconnected(pipe)

    # Hooks for socket types.
    def pipe_attached(self, pipe: Pipe) -> None:
        pass

    def pipe_detached(self, pipe: Pipe) -> None:
        pass

    def pipe_reconnected(self, pipe: Pipe) -> None:
        pass

    # -- user side: the public, non-blocking operations -----------------------------------------

    def send(self, msg: Message) -> bool:
        """Queue one whole message; False means 'would block' (HWM reached, no peer...)."""
        if self._commands:
            self.process_commands()
        return self._send(msg)

    def recv(self) -> Message | None:
        """The next message, or None when there is none yet."""
        if self._commands:
            self.process_commands()
        msg = self._prefetched
        if msg is not None:
            self._prefetched = None
            return msg
        return self._recv()

    def events(self) -> int:
        """POLLIN/POLLOUT as a poller sees them."""
        if self._commands:
            self.process_commands()
        mask = 0
        if self._prefetched is not None:
            mask = c.POLLIN
        elif self.can_recv():
            msg = self._recv()
            if msg is not None:
                self._prefetched = msg
                mask = c.POLLIN
        if self.can_send():
            mask |= c.POLLOUT
        return mask

    def set_subscription(self, topic: bytes, subscribe: bool) -> None:
        raise ZMQError(c.EINVAL, "only SUB and XSUB sockets take SUBSCRIBE/UNSUBSCRIBE")

    # Per-type behaviour.
    def _send(self, msg: Message) -> bool:
        raise ZMQError(c.ENOTSUP, f"{c.SocketType(self.socket_type).name} sockets cannot send")

    def _recv(self) -> Message | None:
        raise ZMQError(c.ENOTSUP, f"{c.SocketType(self.socket_type).name} sockets cannot recv")

    def can_send(self) -> bool:
        return False

    def can_recv(self) -> bool:
        return True

    # -- helpers for socket types -----------------------------------------------------------------

    def _take(self) -> Message | None:
        """The next delivered message, in arrival order; `_batch_pipe` names its pipe."""
        batch = self._batch
        pos = self._pos
        if pos < len(batch):
            self._pos = pos + 1
            return batch[pos]
        return self._next_batch()

    def _next_batch(self) -> Message | None:
        pipe = self._batch_pipe
        if pipe is not None:
            self._batch_pipe = None
            pipe.credit(len(self._batch))
            self._batch = ()
        if not self._in:
            return None
        pipe, batch = self._in.popleft()
        self._batch_pipe = pipe
        self._batch = batch
        self._pos = 1
        return batch[0]

    # -- closing -----------------------------------------------------------------------------

    def unsent(self) -> int:
        return sum(p.queued - p.written for p in self.pipes if p.link is not None)


class LoadBalancer:
    """Round-robin over the pipes that can take a message now (PUSH, DEALER, REQ)."""

    __slots__ = ("_next", "pipes")

    def __init__(self, pipes: list[Pipe]) -> None:
        self.pipes = pipes
        self._next = 0

    def send(self, msg: Message) -> Pipe | None:
        """Queue `msg` on the next pipe with room; the pipe used, or None if all are full."""
        pipes = self.pipes
        n = len(pipes)
        if n == 1:
            pipe = pipes[0]
            return pipe if pipe.offer(msg) else None
        start = self._next
        for i in range(n):
            pipe = pipes[(start + i) % n]
            if pipe.offer(msg):
                self._next = (start + i + 1) % n
                return pipe
        return None

    def any_ready(self) -> bool:
        return any(p.can_send() for p in self.pipes)


def _nothing() -> None:
    pass
