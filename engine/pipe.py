"""Pipes: the queues between a socket and one peer, with high-water marks, and both their ports.

A pipe has two sides, as in libzmq: the socket's user side (the application thread, or the
asyncio task) and the link that carries its messages (on the I/O loop). Each side talks to the
other only through the port the other declares here: `LinkPort` is what a pipe (and its socket)
may ask of a link, `SocketPort` what a link may ask of the socket it serves.

The two sides may run on different threads, so every counter has exactly one writer: the user
side writes `queued` and `consumed`, the link writes `written` and `delivered`. Reads of the
other side's counter can only be stale, never torn, and each wait re-checks after arming its
wake-up, so no notification is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable
from itertools import repeat
from time import monotonic
from typing import Any, Protocol

from .native import native_lock
from .options import UNBOUNDED, Options, queue_limit

Message = list[bytes]
#: What a link delivers at once: messages, each a list of frames or, when it has one frame,
#: that frame alone (bytes: the ZMTP codec's bare_frames; a list per message costs).
Batch = list[Message | bytes]
#: Schedules a call on the I/O loop: call_soon, or call_soon_threadsafe across threads.
Kick = Callable[..., Any]

#: Flush requests closer together than this (seconds) mean a burst: batch them on the loop.
#: A loop pass or a thread hand-off costs about this much, so batching pays below it.
EAGER_WRITE_GAP = 50e-6
#: In a burst on the sync face, the sender's thread itself writes each time a pipe holds this
#: many messages, instead of leaving them all to the I/O thread: the loop's flush, scheduled
#: once per batch, then only takes the tail. 256 short messages are a few KiB per write.
BURST_MESSAGES = 256
#: While a sync-face burst goes on, the loop looks for what the sender left queued this often
#: (seconds), instead of being woken for every batch: a burst costs the sender's thread one
#: GIL hand-off per period, not one per batch. A message after a quiet spell never waits.
BURST_SWEEP_S = 0.0005
#: Links one flush writes before it lets the loop run other work (it is called again at once,
#: on the loop's next pass). A broadcast to thousands of subscribers, about 15 µs of writing
#: each, then holds the loop up about 2 ms at a time rather than 15 ms for a thousand: what
#: arrived meanwhile (a ping, another player's action) is read and answered between. A pass
#: costs tens of µs, against 128 writes.
FLUSH_LINKS_PER_PASS = 128


_popleft = deque.popleft


def take_front(queue: deque[Any], n: int) -> list[Any]:
    """The first `n` items of `queue`, popped in one C-level pass (map over popleft): a
    publisher's link takes each message of a burst once per subscriber, so a Python step
    per message here is paid subscribers times over. Raises IndexError, having popped what
    was there, when `queue` holds fewer (CONFLATE may take its one message meanwhile)."""
    return list(map(_popleft, repeat(queue, n)))


#: FlushQueue's stand-in for a loop whose ready queue it cannot see: never empty.
_NEVER_IDLE = (None,)


class LinkPort(Protocol):
    """The link side: whatever carries a pipe's messages to one peer (a ZMTP link, inproc)."""

    #: A move costs no system call (inproc): write_direct is tried on every send, not only
    #: after a quiet spell (batching would save nothing and delay the peer).
    eager: bool

    def flush(self) -> None:
        """Loop side: write everything the pipe holds (one write per batch)."""

    def write_direct(self) -> bool:
        """User thread: write the pipe's messages now if the link is idle; False: not now."""

    def write_burst(self, wait: bool = False) -> None:
        """User thread, in a burst: write what is queued now if the link takes writes from any
        thread; the flush already scheduled on the loop stays scheduled for the rest. With
        `wait`, a move the loop is making right now is waited for rather than skipped."""

    def hold_for_reader(self) -> None:
        """Eager links only (inproc): what was just queued waits for the loop's flush; the
        peer socket may have it handed over sooner, when it reads (SocketPort.hold)."""

    def resume_reading(self) -> None:
        """Loop side: the socket made room below RCVHWM; read (or deliver) again."""

    def close(self) -> None:
        """End the connection; what the transport still buffers is written first."""

    def abort(self) -> None:
        """End the connection at once, dropping what is buffered."""

    def finish(self, linger_ms: int) -> None:
        """Close once queued messages are written, waiting at most LINGER (-1: no limit)."""


class SocketPort(Protocol):
    """The socket side, as links see it; every call here happens on the I/O loop."""

    socket_type: int
    options: Options
    closed: bool
    #: Connect-side pipes exist before the peer does (messages queue), unless IMMEDIATE.
    queues_before_connect: bool

    def new_pipe(self, persistent: bool = False) -> Pipe: ...

    def reader_busy(self, sender: Any) -> bool:
        """Messages wait to be read and nobody waits for more: `sender` (an inproc link) may
        leave its burst to the loop; the socket asks it to hand over when a read finds none."""

    def hold(self, sender: Any) -> None:
        """`sender` (an inproc link) left messages to the loop's flush: the socket has it hand
        them over when a read finds none, or before an XPUB's next send."""

    def deliver(self, pipe: Pipe, batch: Batch, wake: bool = True) -> None:
        """Messages from the peer, one read's worth at a time. `wake=False` from the thread
        that waits on the socket, reading for itself: it re-checks without being woken."""

    def attach(self, pipe: Pipe) -> None:
        """A new peer is up on `pipe`."""

    def detach(self, pipe: Pipe) -> None:
        """The peer of `pipe` is gone for good."""

    def reattach(self, pipe: Pipe) -> None:
        """A persistent pipe lost its connection and waits for the next (libzmq's hiccup)."""

    def accepts_peer(self, pipe: Pipe) -> bool:
        """At handshake: may this peer join (ROUTER checks routing ids, PAIR takes one)?"""

    def forget_peer(self, pipe: Pipe) -> None:
        """The peer's connection is gone (its routing id is free again)."""

    def notify(self) -> None:
        """Something changed that may let a blocked send or recv proceed."""


class FlushQueue:
    """The links of one socket that have messages to write, served once per batch.

    On the asyncio face every link is written once per loop pass, after the tasks of that pass
    have queued what they send (one send() system call per peer per pass), and at once when
    the sending task is about to wait. On the sync face a message that follows a quiet spell
    is written at once from the user's thread when the link is idle: a request/reply exchange
    then costs no extra loop pass or thread hand-off. In a burst (flush requests less than EAGER_WRITE_GAP apart) messages
    wait for the loop and leave in batches, one loop wake-up per batch; on the sync face the
    sender's thread writes every BURST_MESSAGES itself, and the loop, once woken, sweeps up
    what is left every BURST_SWEEP_S until a sweep finds nothing.
    """

    __slots__ = (
        "_dirty",
        "_drains",
        "_last_request",
        "_later",
        "_ready",
        "_resuming",
        "burst",
        "encoded",
        "kick",
        "same_thread",
        "sweeping",
    )

    def __init__(self, kick: Kick, same_thread: bool) -> None:
        self.kick = kick
        #: The user side runs on the loop's own thread (the asyncio face).
        self.same_thread = same_thread
        #: Queued messages at which the sender's thread writes a burst itself (sync face).
        self.burst = UNBOUNDED if same_thread else BURST_MESSAGES
        self._dirty: deque[LinkPort] = deque()
        #: Shared outboxes with messages for their pipes (handed over before links flush).
        self._drains: deque[SharedOutbox] = deque()
        self._last_request = 0.0
        # The loop's call_later (kick is its call_soon_threadsafe), for the sync face's sweeps.
        loop = getattr(kick, "__self__", None)
        self._later = None if same_thread else getattr(loop, "call_later", None)
        #: Empty when a quiet send may be written at once. On the asyncio face it is the
        #: loop's queue of callbacks ready to run, empty when the loop would poll next: while
        #: the loop has more to run in this pass, what it runs may send to the same peers, and
        #: their messages then leave together, in one write each, at the pass's flush. A loop
        #: without that queue (not asyncio's own) never writes eagerly; the sync face always may.
        self._ready: Collection[Any] = getattr(loop, "_ready", _NEVER_IDLE) if same_thread else ()
        #: A sync-face burst is on: the loop looks for queued messages every BURST_SWEEP_S.
        self.sweeping = False
        #: A flush stopped at FLUSH_LINKS_PER_PASS links; the loop resumes it next pass.
        self._resuming = False
        #: The last batch a PUB/XPUB link encoded, and its bytes: the socket's other links,
        #: given the same messages, write these bytes instead of encoding them again.
        self.encoded: tuple[list[Message], bytes] | None = None

    def schedule(self, link: LinkPort) -> None:
        """User side: `link` has new messages. After a quiet spell they are written at once
        (on the asyncio face only when the loop has nothing else to run in this pass: a pass
        of its own would cost more than the write); in a burst they wait for the loop's
        flush, one write per link per pass."""
        dirty = self._dirty
        if link.eager:  # no system call to save: moved now, burst or not, when it can be
            # (other links waiting for the loop do not matter: order is kept per pipe, and
            # this pipe's earlier messages move first, under the link's lock)
            if not self._drains and not self._ready and link.write_direct():
                return
            # Left to the pass's flush: within the reader's reach meanwhile (a publisher that
            # sends in this pass must see the subscriptions sent before, as over libzmq).
            link.hold_for_reader()
        else:
            now = monotonic()
            quiet = now - self._last_request > EAGER_WRITE_GAP
            self._last_request = now
            if quiet and not dirty and not self._drains and not self._ready and link.write_direct():
                # The gap runs from the end of this write: a publisher's loop over its
                # subscribers, each write a few tens of µs, is a burst, not a row of quiet spells.
                self._last_request = monotonic()
                return
        dirty.append(link)
        if self._later is not None:
            if not self.sweeping:
                self.sweeping = True
                self.kick(self._sweep)
        elif len(dirty) == 1:
            self.kick(self.flush_all)

    def schedule_drain(self, outbox: SharedOutbox) -> None:
        """User side: `outbox` holds messages for its pipes; the loop hands them over (and
        writes them) at its next flush, unless the user side does it first."""
        self._drains.append(outbox)
        if self._later is not None:
            if not self.sweeping:
                self.sweeping = True
                self.kick(self._sweep)
        elif len(self._drains) == 1 and not self._dirty:
            self.kick(self.flush_all)

    def _sweep(self) -> None:
        """Loop side (sync face): flush, and look again soon while the burst goes on."""
        found = bool(self._dirty) or bool(self._drains)
        self.flush_all()
        if found:
            self._later(BURST_SWEEP_S, self._sweep)
            return
        self.sweeping = False
        if self._dirty or self._drains:  # queued between the check and the flag: sweep on
            self.sweeping = True
            self._later(BURST_SWEEP_S, self._sweep)

    def flush_all(self) -> None:
        """Loop side (or the asyncio face just before it waits): write out what is queued,
        FLUSH_LINKS_PER_PASS links at a time."""
        if self._resuming:
            # The rest of a long flush goes on at the loop's next pass. A task about to wait
            # must not write it now: each write can wake that very task (its socket changed),
            # which would then flush again before it waits, and so on to the end of the
            # flush without the loop ever running anything else.
            return
        drains = self._drains
        while drains:
            try:
                outbox = drains.popleft()
            except IndexError:
                break
            outbox.scheduled = False  # before the drain: what comes after schedules anew
            outbox.drain()
        dirty = self._dirty
        for _ in range(FLUSH_LINKS_PER_PASS):
            try:
                link = dirty.popleft()
            except IndexError:
                return
            link.flush()
        if dirty:  # the rest on the next pass, after whatever else is ready
            self._resuming = True
            self.kick(self._resume)

    def _resume(self) -> None:
        self._resuming = False
        self.flush_all()


class Pipe:
    """Messages for one peer (outbox) plus flow control for messages from it."""

    __slots__ = (
        "closed",
        "consumed",
        "delivered",
        "flush_pending",
        "flusher",
        "identity",
        "link",
        "outbox",
        "peer_address",
        "persistent",
        "properties",
        "queued",
        "rcvhwm",
        "read_paused",
        "routing_id",
        "slot",
        "sndhwm",
        "takes_all",
        "written",
    )

    def __init__(
        self, sndhwm: int, rcvhwm: int, flusher: FlushQueue, persistent: bool = False
    ) -> None:
        self.outbox: deque[Message] = deque()
        self.queued = 0  # messages the user side has put in outbox
        self.written = 0  # messages the link has taken from outbox
        self.delivered = 0  # messages the link has handed to the socket
        self.consumed = 0  # messages the user side has taken from what was delivered
        self.sndhwm = queue_limit(sndhwm)
        self.rcvhwm = queue_limit(rcvhwm)
        self.flusher = flusher
        self.link: LinkPort | None = None
        self.flush_pending = False
        self.read_paused = False
        self.closed = False
        #: A connect-side pipe outlives its connections, so messages sent before the peer is up
        #: (or while it reconnects) wait here, as in libzmq without IMMEDIATE.
        self.persistent = persistent
        #: How a ROUTER names this peer (set at handshake).
        self.routing_id = b""
        #: The Identity the peer announced in its READY.
        self.identity = b""
        #: The peer's address as ZAP names it (tcp: its IP), set by the link at handshake.
        self.peer_address = ""
        #: The connection's metadata, names lowercased: what the peer's READY announced
        #: (socket-type, identity, ...), and the user-id and metadata of its ZAP reply. None
        #: for a pipe with no handshake (inproc, multicast). A received Frame reads it.
        self.properties: dict[str, bytes] | None = None
        #: A multicast pipe (udp, pgm, epgm): the socket sends it every message, whatever was
        #: subscribed or joined; the receivers filter (libzmq's subscribe_to_all).
        self.takes_all = False
        #: Where this pipe sits in its socket's pipe list (-1: not in it), so that a socket
        #: of thousands of peers attaches and detaches one without scanning the list.
        self.slot = -1

    # -- user side ----------------------------------------------------------------------------

    def has_room(self) -> bool:
        if self.closed:
            return False
        return self.queued - self.written < self.sndhwm or self.hand_over_at_hwm()

    def can_send(self) -> bool:
        """Room below the high-water mark, and either connected or willing to queue."""
        return (
            not self.closed
            and (self.link is not None or self.persistent)
            and (self.queued - self.written < self.sndhwm or self.hand_over_at_hwm())
        )

    def hand_over_at_hwm(self) -> bool:
        """At SNDHWM, an inproc pipe first hands its peer what fits below the peer's RCVHWM
        (what a busy reader's peer holds back), and then has room again: libzmq's inproc
        pipe holds SNDHWM plus the peer's RCVHWM, whoever has read what. A ZMTP pipe has
        no such room to find (its link writes to the kernel on the loop's own pass)."""
        link = self.link
        if link is None or not link.eager:
            return False
        # (waiting out a move the loop is making: skipped, it said Again with room to come)
        link.write_burst(wait=True)
        return self.queued - self.written < self.sndhwm

    def offer(self, msg: Message) -> bool:
        """push() if the pipe can take the message now; the hot path of every send."""
        if (
            self.closed
            or (self.link is None and not self.persistent)
            or (self.queued - self.written >= self.sndhwm and not self.hand_over_at_hwm())
        ):
            return False
        outbox = self.outbox
        outbox.append(msg)
        self.queued += 1
        if not self.flush_pending:
            self._request_flush()
        elif len(outbox) >= self.flusher.burst and self.link is not None:
            self.link.write_burst()
        return True

    def push(self, msg: Message) -> None:
        """Queue one message for the peer, whatever the high-water mark says."""
        outbox = self.outbox
        outbox.append(msg)
        self.queued += 1
        if not self.flush_pending:
            self._request_flush()
        elif len(outbox) >= self.flusher.burst and self.link is not None:
            self.link.write_burst()

    def _request_flush(self) -> None:
        # Once per batch: the link takes everything queued when it flushes.
        link = self.link
        if link is not None:
            self.flush_pending = True
            self.flusher.schedule(link)

    def credit(self, count: int) -> None:
        """The user side finished `count` delivered messages: the link may read again."""
        self.consumed += count
        if self.read_paused:
            link = self.link
            if link is not None:
                self.flusher.kick(link.resume_reading)

    # -- link side ----------------------------------------------------------------------------

    def room(self) -> int:
        """How many more messages the socket takes from this peer before RCVHWM."""
        return self.rcvhwm - (self.delivered - self.consumed)

    def drop_queued(self) -> None:
        """Forget what waits in the outbox (stale after a reconnect, for some socket types)."""
        outbox = self.outbox
        while outbox:
            try:
                outbox.popleft()
            except IndexError:  # the user side replaced it meanwhile (CONFLATE)
                break
            self.written += 1

    def __repr__(self) -> str:
        return f"<Pipe rid={self.routing_id!r} out={self.queued - self.written}>"


def push_each(targets: Iterable[Pipe], msg: Message, burst: int) -> None:
    """Pipe.push to each of `targets` that has room (a publisher's distribute), inline: one
    Python call per message instead of two per pipe, which counts with 100 subscribers.
    `burst` is the pipes' flusher's (one socket's pipes share one)."""
    for pipe in targets:
        queued = pipe.queued
        if not pipe.closed and (queued - pipe.written < pipe.sndhwm or pipe.hand_over_at_hwm()):
            outbox = pipe.outbox
            outbox.append(msg)
            pipe.queued = queued + 1
            if pipe.flush_pending:
                if len(outbox) >= burst and pipe.link is not None:
                    pipe.link.write_burst()
            else:
                pipe._request_flush()


def push_batch(targets: Iterable[Pipe], batch: list[Message], burst: int) -> None:
    """push_each for each message of `batch`, in order, one deque extend per pipe: what a
    SharedOutbox hands over. A pipe takes as many as fit below its high-water mark (all of
    them, when the caller kept to the room its targets had)."""
    n = len(batch)
    for pipe in targets:
        if pipe.closed:
            continue
        queued = pipe.queued
        room = pipe.sndhwm - (queued - pipe.written)
        if room < n:
            pipe.hand_over_at_hwm()
            room = pipe.sndhwm - (queued - pipe.written)
        if room < n:
            if room <= 0:
                continue
            some = batch[:room]
            pipe.outbox.extend(some)
            pipe.queued = queued + len(some)
        else:
            pipe.outbox.extend(batch)
            pipe.queued = queued + n
        if pipe.flush_pending:
            if len(pipe.outbox) >= burst and pipe.link is not None:
                pipe.link.write_burst()
        else:
            pipe._request_flush()


class SharedOutbox:
    """A publisher's burst, queued once for all the pipes it goes to, not once per pipe.

    The user side appends each message (O(1), however many subscribers) while `targets`
    stays the same collection, and no more than every target has room for; the messages are
    handed to each pipe in one deque extend per batch (push_batch): by the user side when
    BURST_MESSAGES have piled up, else by the loop's next sweep. Either side may hand over;
    `drain` holds a lock so that batches reach the pipes in order. Only the user side
    appends, changes `targets` (always right after a drain, under the same lock), or
    changes what `targets` holds (after end_run), so a drain never sees a message with the
    wrong targets.
    """

    __slots__ = ("_lock", "burst", "messages", "scheduled", "targets")

    def __init__(self, burst: int) -> None:
        self.messages: deque[Message] = deque()
        self.targets: Collection[Pipe] | None = None
        #: On the flusher's list of drains (cleared by the loop just before it drains).
        self.scheduled = False
        self.burst = burst
        self._lock = native_lock()

    def drain(self) -> None:
        """Any side: hand every queued message to the target pipes, in order."""
        with self._lock:
            self._hand_over()

    def try_drain(self) -> None:
        """User side, in a burst: drain(), unless the loop is at it right now (it takes what
        is queued; waiting for it would only hand the GIL back and forth)."""
        lock = self._lock
        if lock.acquire(False):
            try:
                self._hand_over()
            finally:
                lock.release()

    def start_run(self, targets: Collection[Pipe] | None) -> None:
        """User side: hand over what is queued, then queue for `targets` (None: stop)."""
        with self._lock:
            self._hand_over()
            self.targets = targets

    def _hand_over(self) -> None:
        messages = self.messages
        n = len(messages)  # the user side may append meanwhile: those wait for the next
        if n:
            push_batch(self.targets or (), take_front(messages, n), self.burst)


class ConflatingPipe(Pipe):
    """CONFLATE: a new message replaces the unsent one instead of waiting behind it."""

    __slots__ = ()

    def offer(self, msg: Message) -> bool:
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
