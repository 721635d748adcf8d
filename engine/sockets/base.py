"""SocketCore: what every socket type shares, free of any blocking, threading or transport.

The user side calls `send`, `recv` and `events`, which never block: they return False/None when
the operation would block, and the faces decide how to wait. Links on the I/O loop reach the
socket only through the pipe's `SocketPort`: `deliver`, `attach`, `detach`, `notify`...
Pipe membership changes travel from the loop to the user side as commands, so the per-type
routing state has a single owner. A socket knows no context, no endpoints and no links.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, cast

from .. import constants as c
from ..errors import ZMQError
from ..options import Options, queue_limit
from ..pipe import Batch, ConflatingPipe, FlushQueue, Kick, Message, Pipe
from .parts import FairQueue


class Traffic:
    """Messages and bytes (all frames) through one socket's user side; off unless asked for
    (`Socket.traffic()`), so unmetered sockets pay one attribute test per message."""

    __slots__ = ("bytes_in", "bytes_out", "msgs_in", "msgs_out")

    def __init__(self) -> None:
        self.msgs_in = self.bytes_in = self.msgs_out = self.bytes_out = 0


class SocketCore:
    """The pipes and the incoming fair-queue of one socket; a socket type adds its routing."""

    socket_type: int = -1
    #: Connect-side pipes exist before the peer does (messages queue), unless IMMEDIATE is set.
    queues_before_connect = True
    #: Only one peer at a time (PAIR).
    single_peer = False
    #: False for the types that only receive (PULL, SUB): a send is ENOTSUP.
    sends_messages = True
    #: A message given a frame at a time waits for room at its first frame (PUSH, DEALER,
    #: REQ, PAIR: libzmq's load-balancer), see room_for_message.
    waits_at_first_frame = False
    #: Any thread may use it at any time, one frame per message (the draft types).
    thread_safe = False
    #: What a thread-safe type's first frame carries between face and core (threadsafe.py).
    metadata: str | None = None

    def __init__(self, kick: Kick, same_thread: bool) -> None:
        self.flusher = FlushQueue(kick, same_thread)
        self.options = Options()
        self.pipes: list[Pipe] = []
        #: A single-peer type's (PAIR) accepted peer, from its acceptance on (accepts_peer).
        self._single_peer_pipe: Pipe | None = None
        self.closed = False
        self.inbox = FairQueue()
        # Written by links on the loop, read by the user side.
        self._commands: deque[tuple[Callable[[Pipe], None], Pipe]] = deque()
        self._armed = False
        self._wake: Callable[[], None] = _nothing
        #: Wake the face at every delivery and pipe change, armed or not: set while the asyncio
        #: face hands messages to a callback as they arrive (its on_recv), which never waits.
        self.wake_on_delivery = False
        # A message events() took to learn that one is readable; recv() hands it out first.
        self._prefetched: Message | None = None
        #: Set by the face while it holds frames of the current message that recv() has yet
        #: to hand out (one frame a call): no direct take may jump ahead of them, whatever
        #: recomputes `direct` meanwhile (a setsockopt, a peer arriving).
        self.face_holds_rest = False
        #: Inproc senders that left a burst to their loop because this reader had messages
        #: to read (reader_busy): a read that finds nothing has them hand it over at once,
        #: so what was sent is readable as soon as send() returned, as in libzmq.
        self.held_by_senders: deque[Any] = deque()
        self.traffic: Traffic | None = None
        #: The fair-queue a face may take whole messages from itself, without calling recv():
        #: set while this socket's recv is a plain fair-queue take (see takes_directly) and no
        #: command or prefetched message waits, else None. The loop clears it with each command
        #: it queues, so the face's every-message check is this one attribute.
        self.direct: FairQueue | None = None
        #: What refresh_direct last found of takes_directly() and the socket's state.
        self._takes_directly = False
        #: The pipe a face may offer a whole message to itself, without calling send(), while
        #: no command waits: set while this socket's send is a plain offer to its only pipe
        #: (see sends_directly), else None. Spares every message of a PUSH two calls.
        self.direct_out: Pipe | None = None

    def apply_hwms(self) -> None:
        """User side, after SNDHWM or RCVHWM is set: the pipes the socket has already take the
        new marks too, as libzmq's do (the engine gave them only to pipes made after, so a
        mark set after connect() bounded nothing until a reconnection). A pipe that may now
        take more from its peer reads again."""
        opts = self.options
        sndhwm = queue_limit(opts.sndhwm)
        rcvhwm = queue_limit(opts.rcvhwm)
        for pipe in list(self.pipes):
            if pipe.closed or isinstance(pipe, ConflatingPipe):
                continue  # (a retired or departed peer; CONFLATE keeps its own marks)
            pipe.sndhwm = sndhwm
            pipe.rcvhwm = rcvhwm
            if pipe.read_paused and pipe.room() > 0 and pipe.link is not None:
                self.flusher.kick(pipe.link.resume_reading)

    def refresh_direct(self) -> None:
        """User side: recompute `direct` and `direct_out` after a change of options,
        subscriptions, metering, pipes or state."""
        # A thread-safe type (the draft ones) is reached only under its lock: never directly.
        plain = not self.closed and self.traffic is None and not self.thread_safe
        self._takes_directly = plain and self.takes_directly()
        self.direct = (
            self.inbox
            if self._takes_directly and self._prefetched is None and not self.face_holds_rest
            else None
        )
        pipes = self.pipes
        one = plain and len(pipes) == 1 and self.sends_directly()
        self.direct_out = pipes[0] if one else None
        if self._commands:
            # The loop queued one after the caller emptied the queue, perhaps before the line
            # above undid its clearing of `direct`: clear it again (the command is taken on
            # the next call that is not a direct take).
            self.direct = None

    def takes_directly(self) -> bool:
        """Is recv() just the fair-queue's next message (no filter, no routing, no state)?"""
        return False

    def sends_directly(self) -> bool:
        """With one pipe, is send() just that pipe's offer (no routing, no state)?"""
        return False

    # -- wake-ups -----------------------------------------------------------------------------

    def set_waker(self, wake: Callable[[], None]) -> None:
        """The face's way to be woken: set an eventfd, resolve a future..."""
        self._wake = wake

    def arm(self) -> None:
        """Ask for one wake-up at the next change; the caller must re-check before waiting."""
        self._armed = True

    def disarm(self) -> None:
        """The re-check after arm() succeeded: nobody waits, so no wake-up is owed."""
        self._armed = False

    def notify(self) -> None:
        """Loop side: something changed that may let a blocked send or recv proceed."""
        if self._armed:
            self._armed = False
            self._wake()

    # -- loop side (the pipe's SocketPort) --------------------------------------------------------

    def new_pipe(self, persistent: bool = False) -> Pipe:
        opts = self.options
        if opts.conflate:
            # Never stop reading: each delivery replaces what is queued (see deliver).
            return ConflatingPipe(1, 0, self.flusher, persistent)
        pipe = Pipe(opts.sndhwm, opts.rcvhwm, self.flusher, persistent)
        if opts.probe_router:
            # PROBE_ROUTER (ROUTER, DEALER, REQ, REP): an empty message first, so that a
            # ROUTER peer learns this peer's routing id at once. Queued here, before any
            # other thread sees the pipe; once a pipe, as in libzmq (a connect-side pipe
            # that outlives a reconnection does not probe again).
            pipe.push([b""])
        return pipe

    def reader_busy(self, sender: Any) -> bool:
        """Messages wait to be read and nobody waits for more: an inproc sender leaves its
        burst to the loop's batches rather than hand over (and wake for) each message. It is
        kept in `held_by_senders` until a read finds nothing."""
        if self._armed or not self.inbox.waiting():
            return False
        self.hold(sender)
        return True

    def hold(self, sender: Any) -> None:
        """Keep `sender` in `held_by_senders` until a read (or an XPUB's send) has it hand over
        what it left to the loop's flush."""
        if not sender.held_back:  # once until the next hand-over: the queue stays short
            sender.held_back = True
            self.held_by_senders.append(sender)

    def _recv_or_pull(self) -> Message | None:
        """The type's next message; when there is none, what inproc senders hold back first."""
        msg = self._recv()
        if msg is None and self.held_by_senders and self._pulled():
            msg = self._recv()
        return msg

    def deliver(self, pipe: Pipe, batch: Batch, wake: bool = True) -> None:
        if self.options.conflate:
            self.inbox.replace(pipe, batch)
        else:
            self.inbox.deliver(pipe, batch)
        if wake and (self._armed or self.wake_on_delivery):
            self._armed = False
            self._wake()

    def attach(self, pipe: Pipe) -> None:
        self._command(self._attach, pipe)

    def detach(self, pipe: Pipe) -> None:
        pipe.closed = True
        self._command(self._detach, pipe)

    def reattach(self, pipe: Pipe) -> None:
        self._command(self.pipe_reconnected, pipe)

    def _command(self, handler: Callable[[Pipe], None], pipe: Pipe) -> None:
        """Queue a pipe change for the user side, and wake it: a face that hands messages to a
        callback too, since a change may make one (an XPUB's cancellations of a peer's topics)."""
        self._commands.append((handler, pipe))
        self.direct = None
        if self._armed or self.wake_on_delivery:
            self._armed = False
            self._wake()

    def accepts_peer(self, pipe: Pipe) -> bool:
        if not self.single_peer:
            return True
        # The pipe list is the user side's, and a peer accepted a moment ago may not be in it
        # yet (two inproc connects in a row): the last one accepted holds the place too.
        taken = self._single_peer_pipe
        if (taken is not None and not taken.closed) or any(not p.closed for p in self.pipes):
            return False
        self._single_peer_pipe = pipe
        return True

    def forget_peer(self, pipe: Pipe) -> None:
        pass

    # -- user side: commands from the loop ------------------------------------------------------

    def process_commands(self) -> None:
        commands = self._commands
        if not commands:
            return
        while commands:
            handler, pipe = commands.popleft()
            handler(pipe)
        self.refresh_direct()  # the loop cleared `direct` with each command it queued

    def _take_prefetched(self) -> Message:
        """The message events() took to learn that one was readable (there is one)."""
        msg = self._prefetched
        self._prefetched = None
        if self._takes_directly and not self.face_holds_rest:  # (refresh_direct's finding)
            self.direct = self.inbox
            if self._commands:  # as in refresh_direct
                self.direct = None
        return cast(Message, msg)

    def _attach(self, pipe: Pipe) -> None:
        pipes = self.pipes
        if pipe.slot < 0:
            pipe.slot = len(pipes)
            pipes.append(pipe)
        self.pipe_attached(pipe)
        self.refresh_direct()

    def _detach(self, pipe: Pipe) -> None:
        slot = pipe.slot
        if slot < 0:
            return
        # The last pipe takes the leaving one's place (as libzmq's array does): O(1) with
        # thousands of peers. Order means nothing here: the load-balancer goes round them all.
        pipes = self.pipes
        last = pipes.pop()
        if last is not pipe:
            pipes[slot] = last
            last.slot = slot
        pipe.slot = -1
        self.pipe_detached(pipe)
        self.refresh_direct()

    # Hooks for socket types (user side).
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
        sent = self._send(msg)
        if sent and self.traffic is not None:
            self.traffic.msgs_out += 1
            self.traffic.bytes_out += sum(map(len, msg))
        return sent

    def recv(self) -> Message | None:
        """The next message, or None when there is none yet."""
        if self._commands:
            self.process_commands()
        if self._prefetched is not None:
            msg = self._take_prefetched()
        else:
            msg = self._recv()
            if msg is None and self.held_by_senders and self._pulled():
                msg = self._recv()  # what inproc senders held back (see reader_busy)
        if msg is not None and self.traffic is not None:
            self.traffic.msgs_in += 1
            self.traffic.bytes_in += sum(map(len, msg))
        return msg

    def events(self) -> int:
        """POLLIN/POLLOUT as a poller sees them."""
        if self._commands:
            self.process_commands()
        mask = 0
        if self._prefetched is not None:
            mask = c.POLLIN
        elif self.direct is not None:
            # recv() is a plain fair-queue take: readable is "a message is waiting", and none
            # is taken ahead, so the face's next recv still takes it directly.
            inbox = self.inbox
            if inbox.pipe is not None:
                inbox.settle()  # (a batch read to its end: its link may read again)
            if inbox.waiting() or (self.held_by_senders and self._pulled()):
                mask = c.POLLIN
        elif self.can_recv():
            msg = self._recv_or_pull()
            if msg is not None:
                self._prefetched = msg
                self.direct = None  # recv() must hand this one out first
                mask = c.POLLIN
        if self.can_send():
            mask |= c.POLLOUT
        return mask

    def _pulled(self) -> bool:
        """Have the held-back inproc senders hand over; is anything readable now?"""
        held = self.held_by_senders
        while held:
            try:
                sender = held.popleft()
            except IndexError:
                break
            sender.held_back = False
            sender.write_burst(wait=True)
        return self.inbox.waiting()

    def set_subscription(self, topic: bytes, subscribe: bool) -> None:
        raise ZMQError(c.EINVAL, "only SUB and XSUB sockets take SUBSCRIBE/UNSUBSCRIBE")

    def topics_count(self) -> int:
        """TOPICS_COUNT: the distinct topics subscribed, on the PUB/SUB types only."""
        raise ZMQError(c.EINVAL, "only PUB, XPUB, SUB and XSUB sockets count topics")

    def closing(self) -> None:
        """User side, as the socket closes: whatever the type holds back for its pipes goes
        to them now, so that LINGER covers it."""

    def flush(self) -> None:
        """Write what this socket queued now, rather than at the loop's next pass (past
        FLUSH_LINKS_PER_PASS links, the rest goes on in the passes after: pipe.FlushQueue)."""
        self.flusher.flush_all()

    def unsent(self) -> int:
        return sum(p.queued - p.written for p in self.pipes if p.link is not None)

    def start_message(self, first: bytes) -> bool:
        """User side: the first part of a message given with SNDMORE. libzmq takes a message a
        frame at a time, so a type that would refuse the message refuses this first frame
        (the caller learns it there, not at the last frame), and one with no room for it now
        says so here: False, and the face waits (or says Again) as for a whole message. The
        frames after a first one taken never wait in libzmq; here the message goes whole at
        its last frame, and the room found at the first is still there (only this thread
        fills the pipes)."""
        if not self.sends_messages:
            self._send([first])  # ENOTSUP
        if self._commands:
            self.process_commands()  # a peer that arrived a moment ago may have room
        return self.room_for_message(first)

    def room_for_message(self, first: bytes) -> bool:
        """Could a message beginning with `first` be taken now? The load-balancing types ask
        can_send(), as libzmq's load-balancer does at a first frame; the others never wait
        (they drop what a full peer cannot take), unless their type says otherwise."""
        return not self.waits_at_first_frame or self.can_send()

    # Per-type behaviour.
    def _send(self, msg: Message) -> bool:
        raise ZMQError(c.ENOTSUP, f"{c.SocketType(self.socket_type).name} sockets cannot send")

    def _recv(self) -> Message | None:
        raise ZMQError(c.ENOTSUP, f"{c.SocketType(self.socket_type).name} sockets cannot recv")

    def can_send(self) -> bool:
        return False

    def can_recv(self) -> bool:
        return True


def _nothing() -> None:
    pass
