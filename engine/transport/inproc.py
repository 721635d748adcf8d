"""inproc://: two sockets of one context joined pipe to pipe, with no codec in between.

The names bound in a context live in that context's `InprocRegistry`, which has its own lock:
with several I/O threads, binds and connects run on different loops at once.
"""

from __future__ import annotations

from typing import Protocol

from .. import constants as c
from ..endpoint import Endpoint
from ..errors import ZMQError
from ..native import native_lock, native_rlock
from ..options import UNBOUNDED
from ..pipe import Pipe, take_front
from .link import MAX_FLUSH_BATCH
from .link_roles import LinkHost


class InprocHost(LinkHost, Protocol):
    """A socket's transport side, with its context's inproc registry."""

    inproc: InprocRegistry


class InprocLink:
    """Moves messages from `pipe` (in `port`) to `peer_pipe` (in `peer_port`): each direction
    of a connection is one InprocLink, owned by its sender.

    A send is delivered by the sender's own call (`write_direct`), so the peer can read it as
    soon as send() returns, as with libzmq's inproc; what cannot go at once (the peer at its
    RCVHWM, the loop moving this pipe already) the sender's socket's loop moves (`flush`).
    Every move is under the link's lock: a direct write, a reader's pull and the loop's flush
    never interleave."""

    def __init__(
        self, host: LinkHost, pipe: Pipe, peer_host: LinkHost, peer_pipe: Pipe, endpoint: str
    ) -> None:
        self.host = host
        self.port = host.port
        self.pipe = pipe
        self.peer_host = peer_host
        self.peer_port = peer_host.port
        self.peer_pipe = peer_pipe
        self.peer: InprocLink | None = None
        self.closed = False
        self.endpoint = endpoint
        # A real lock even for a sender on its loop's own thread (the asyncio face, a ZAP
        # client): the reader, which may be a sync-face thread (a ZAP handler), has held-back
        # senders hand over from its own thread (SocketCore.reader_busy). Re-entrant: an
        # asyncio reader's on_recv runs inside the delivery, and may pull from this very link.
        self._move_lock = native_rlock()
        #: Queued in the peer socket's held_by_senders (see SocketCore.reader_busy).
        self.held_back = False

    def flush(self) -> None:
        with self._move_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        pipe, target = self.pipe, self.peer_pipe
        pipe.flush_pending = False
        if self.closed:
            return
        outbox = pipe.outbox
        room = target.room()
        if room <= 0:
            target.read_paused = True
            room = target.room()  # re-check: see pipe.py
            if room <= 0:
                return
            target.read_paused = False
        n = min(len(outbox), room, MAX_FLUSH_BATCH)
        if n <= 0:
            return
        try:
            batch = take_front(outbox, n)
        except IndexError:  # CONFLATE took its one message meanwhile
            return
        pipe.written += len(batch)
        self.peer_port.deliver(target, batch)
        self.port.notify()
        if outbox and not pipe.flush_pending:
            pipe.flush_pending = True
            self.host.loop.call_soon(self.flush)

    eager = True  # a move is no system call: every send is delivered by its own call

    def write_direct(self) -> bool:
        """User side: hand what is queued to the peer now, when it all fits below the peer's
        RCVHWM and the peer is not busy reading; False (the loop's flush then) otherwise."""
        if self.closed:
            return False
        lock = self._move_lock
        if not lock.acquire(False):
            return False  # the loop is moving this pipe's messages now
        try:
            pipe, target = self.pipe, self.peer_pipe
            outbox = pipe.outbox
            n = len(outbox)
            if self.closed or n > min(target.room(), MAX_FLUSH_BATCH):
                return False  # the loop's flush pauses, resumes and splits as it must
            if self.peer_port.reader_busy(self):
                return False  # the reader has work: the loop's batch, one wake-up for many
            pipe.flush_pending = False
            try:
                # (one message, the usual case: no batch slicing)
                batch = [outbox.popleft()] if n == 1 else take_front(outbox, n)
            except IndexError:  # CONFLATE took its one message meanwhile
                return True
            if batch:
                pipe.written += n
                self.peer_port.deliver(target, batch)
        finally:
            lock.release()
        self.port.notify()
        return True

    def hold_for_reader(self) -> None:
        if not self.closed:
            self.peer_port.hold(self)

    def write_burst(self, wait: bool = False) -> None:
        """User side (the sender in a burst; with `wait` a reader that found nothing, or a
        sender at its SNDHWM, which waits for a move the loop is making): move what fits now;
        the loop's flush, already scheduled, moves the rest."""
        lock = self._move_lock
        if self.closed or not lock.acquire(wait):
            return
        try:
            pipe, target = self.pipe, self.peer_pipe
            n = min(len(pipe.outbox), target.room(), MAX_FLUSH_BATCH)
            if n <= 0 or self.closed:
                return
            try:
                batch = take_front(pipe.outbox, n)
            except IndexError:
                return
            pipe.written += n
            if not pipe.outbox:
                # All moved: the next send asks again (write_direct, or the reader's
                # held_by_senders), rather than wait behind the loop's flush.
                pipe.flush_pending = False
            self.peer_port.deliver(target, batch)
        finally:
            lock.release()
        self.port.notify()  # a sender blocked at SNDHWM has room again

    def resume_reading(self) -> None:
        # Our pipe was read from: the other direction may deliver into it again, on its own
        # socket's loop (which may be another I/O thread's).
        peer = self.peer
        if self.pipe.read_paused and peer is not None:
            self.pipe.read_paused = False
            peer.pipe.flusher.kick(peer.flush)

    def close(self) -> None:
        for link in (self, self.peer):
            if link is not None and not link.closed:
                link.closed = True
                link.pipe.link = None
                link.port.forget_peer(link.pipe)
                link.port.detach(link.pipe)
                link.host.links.discard(link)

    def abort(self) -> None:
        self.close()

    def finish(self, linger_ms: int) -> None:
        # Every message send() took is delivered, whatever LINGER says, as in libzmq: there an
        # inproc pipe is the peer's own queue, which its reader drains up to the closing
        # delimiter. Here some may still wait in our outbox for the loop's flush (LINGER 0
        # lost them, and any other LINGER what one flush could not move). They are in memory
        # already and the peer socket outlives us, so its high-water mark no longer applies.
        self.peer_pipe.rcvhwm = UNBOUNDED
        outbox = self.pipe.outbox
        while outbox and not self.closed:
            queued = len(outbox)
            self.flush()  # at most MAX_FLUSH_BATCH a time
            if len(outbox) >= queued:
                break  # nothing moved: CONFLATE took it meanwhile
        self.close()


def join(
    a: LinkHost, b: LinkHost, endpoint: str, a_pipe: Pipe | None = None, routing_id: bytes = b""
) -> InprocLink | None:
    """Connect socket `a` (connecting side) to `b` (bound side); None if they may not talk."""
    pa_port, pb_port = a.port, b.port
    if pb_port.socket_type not in c.COMPATIBLE_PEERS[pa_port.socket_type]:
        return None
    pa = a_pipe if a_pipe is not None else pa_port.new_pipe()
    pb = pb_port.new_pipe()
    pa.routing_id = routing_id  # CONNECT_ROUTING_ID: how `a` (a ROUTER) names this peer
    pa.identity, pb.identity = pb_port.options.routing_id, pa_port.options.routing_id
    if not pb_port.accepts_peer(pb):
        return None
    if a_pipe is None and not pa_port.accepts_peer(pa):
        pb.closed = True  # (b accepted it: that place is free again)
        return None
    # The two HWMs add up, as in libzmq's one inproc pipe: each side bounds its own queue,
    # and a sender at its SNDHWM hands over what fits below the peer's RCVHWM first
    # (Pipe.hand_over_at_hwm).
    link_ab, link_ba = InprocLink(a, pa, b, pb, endpoint), InprocLink(b, pb, a, pa, endpoint)
    link_ab.peer, link_ba.peer = link_ba, link_ab
    pa.link, pb.link = link_ab, link_ba
    a.links.add(link_ab)
    b.links.add(link_ba)
    if a_pipe is None:
        pa_port.attach(pa)
    pb_port.attach(pb)
    for pipe, link in ((pa, link_ab), (pb, link_ba)):
        if pipe.outbox:  # queued before the peer existed, or a PROBE_ROUTER's probe
            pipe.flush_pending = True
            pipe.flusher.kick(link.flush)
    return link_ab


class InprocEndpoint:
    """A bound inproc name (bind side), or one connection to such a name (connect side)."""

    def __init__(self, host: InprocHost, endpoint: Endpoint, bound: bool) -> None:
        self.host = host
        self.bound = bound
        self.name = endpoint.address
        self.endpoint = str(endpoint)
        self.pipe: Pipe | None = None
        self.link: InprocLink | None = None
        opts = host.port.options
        self.routing_id = opts.connect_routing_id
        opts.connect_routing_id = b""  # it applies to the next connect only

    def close(self, drop_links: bool = True, linger_ms: int = 0) -> None:
        self.host.inproc.release(self)
        if drop_links and self.link is not None:
            self.link.close()  # disconnect() ends this connection, as over tcp


class InprocRegistry:
    """The inproc names bound in one context, and the connects waiting for a name."""

    def __init__(self) -> None:
        self._lock = native_lock()
        self._bound: dict[str, InprocHost] = {}
        self._pending: dict[str, list[InprocEndpoint]] = {}

    def bind(self, host: InprocHost, endpoint: Endpoint) -> InprocEndpoint:
        name = endpoint.address
        bound = InprocEndpoint(host, endpoint, bound=True)
        with self._lock:
            if name in self._bound:
                raise ZMQError(c.EADDRINUSE, f"inproc name already bound: {endpoint}")
            self._bound[name] = host
            waiting = self._pending.pop(name, [])
            for ep in waiting:
                if not ep.host.port.closed:
                    ep.link = join(ep.host, host, ep.endpoint, ep.pipe, ep.routing_id)
        return bound

    def connect(self, host: InprocHost, endpoint: Endpoint) -> InprocEndpoint:
        ep = InprocEndpoint(host, endpoint, bound=False)
        port = host.port
        with self._lock:
            bound = self._bound.get(endpoint.address)
            if bound is not None:
                if bound.port.socket_type not in c.COMPATIBLE_PEERS[port.socket_type]:
                    raise ZMQError(c.ENOCOMPATPROTO, f"socket types cannot talk over {endpoint}")
                # None when the bound socket refuses the peer (a PAIR that has one): libzmq's
                # connect succeeds and the bound side ends the pipe, so nothing is connected.
                ep.link = join(host, bound, ep.endpoint, None, ep.routing_id)
                return ep
            # Connect before bind: queue in a pipe now, join when someone binds the name.
            # IMMEDIATE has no say here: libzmq makes an inproc connection's pipe at
            # connect() whatever it is set to (the engine made none, so sends said Again).
            if port.queues_before_connect:
                ep.pipe = port.new_pipe(persistent=True)
                port.attach(ep.pipe)
            self._pending.setdefault(endpoint.address, []).append(ep)
        return ep

    def join_bound(self, host: LinkHost, name: str, endpoint: str) -> InprocLink | None:
        """Join `host` to whatever has bound `name` right now; None if nothing has (a ZAP
        client does not wait for its handler: without one, the handshake goes on without)."""
        with self._lock:
            bound = self._bound.get(name)
            if bound is None or bound.port.closed:
                return None
            return join(host, bound, endpoint)

    def release(self, ep: InprocEndpoint) -> None:
        """An endpoint closes: its name is free again, or its pending connect is dropped."""
        with self._lock:
            if ep.bound and self._bound.get(ep.name) is ep.host:
                del self._bound[ep.name]
            pending = self._pending.get(ep.name)
            if pending and ep in pending:
                pending.remove(ep)


def bind(host: InprocHost, endpoint: Endpoint) -> InprocEndpoint:
    return host.inproc.bind(host, endpoint)


def connect(host: InprocHost, endpoint: Endpoint) -> InprocEndpoint:
    return host.inproc.connect(host, endpoint)
