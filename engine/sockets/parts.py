"""The parts socket types are built from, as in libzmq: fair-queue, load-balance, distribute.

Each part knows pipes and messages only; a socket type composes the ones its routing needs
(DEALER = load-balancer out + fair-queue in, PUB = distribute out, ...). The subscription
tables (subscriptions.py) are the fourth part.
"""

from __future__ import annotations

from collections import deque

from ..pipe import Batch, Message, Pipe


class FairQueue:
    """Messages from every peer in arrival order, one read's worth (a batch) at a time.

    Links append whole batches on the loop; the user side takes messages one by one. Taking
    the first message of the next batch credits the pipe of the batch just finished, which lets
    a link paused at RCVHWM read again. `pipe` names the pipe of the message taken last.

    A batch item is a message (a list of frames) or, for a one-frame message, that frame alone
    (`bytes`, as the ZMTP codec's bare_frames delivers them): take() always hands out a list;
    a face that wants only the frame reads `batch[pos]` itself and tells the two by type.
    """

    __slots__ = ("batch", "incoming", "pipe", "pos")

    def __init__(self) -> None:
        #: Batches not yet started, appended by links on the loop.
        self.incoming: deque[tuple[Pipe, Batch]] = deque()
        self.batch: Batch | tuple[()] = ()
        self.pos = 0
        self.pipe: Pipe | None = None

    def deliver(self, pipe: Pipe, batch: Batch) -> None:
        """Loop side: one read's worth of messages from `pipe`."""
        self.incoming.append((pipe, batch))
        pipe.delivered += len(batch)

    def replace(self, pipe: Pipe, batch: Batch) -> None:
        """Loop side, CONFLATE: only the newest message is worth keeping."""
        self.incoming.clear()
        self.deliver(pipe, batch[-1:])

    def take(self) -> Message | None:
        """The next message, or None when nothing is waiting."""
        batch = self.batch
        pos = self.pos
        if pos < len(batch):
            self.pos = pos + 1
            msg = batch[pos]
            return [msg] if type(msg) is bytes else msg
        if self.pipe is None and not self.incoming:
            return None  # nothing to credit, nothing to start: the common empty look
        return self._next_batch()

    def _next_batch(self) -> Message | None:
        pipe = self.pipe
        if pipe is not None:
            self.pipe = None
            pipe.credit(len(self.batch))
            self.batch = ()
        if not self.incoming:
            return None
        pipe, batch = self.incoming.popleft()
        self.pipe = pipe
        self.batch = batch
        self.pos = 1
        msg = batch[0]
        return [msg] if type(msg) is bytes else msg

    def waiting(self) -> bool:
        """Anything left to take (without taking it)?"""
        return self.pos < len(self.batch) or bool(self.incoming)

    def settle(self) -> None:
        """Credit the batch taken to its end, without taking anything more: a reader that
        polls before each recv never calls take() with the batch ended and nothing behind
        it, and a link paused at RCVHWM waited for that credit for ever (a PULL polled
        before each recv stopped after RCVHWM messages)."""
        pipe = self.pipe
        if pipe is not None and self.pos >= len(self.batch):
            self.pipe = None
            pipe.credit(len(self.batch))
            self.batch = ()


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


Targets = list[Pipe] | set[Pipe] | frozenset[Pipe]


def distribute(targets: Targets, msg: Message) -> None:
    """One message to many pipes (PUB, XPUB). A pipe at its high-water mark misses it: a
    publisher drops rather than blocks (RFC 29), so one slow subscriber never holds up the rest."""
    for pipe in targets:
        if pipe.has_room():
            pipe.push(msg)


def all_have_room(targets: Targets) -> bool:
    """XPUB_NODROP: send only when every target can take the message."""
    return all(pipe.has_room() for pipe in targets)


def distribute_always(pipes: list[Pipe], msg: Message) -> None:
    """To every open pipe, whatever its high-water mark (subscriptions must get through)."""
    for pipe in pipes:
        if not pipe.closed:
            pipe.push(msg)
