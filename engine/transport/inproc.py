"""inproc://: two sockets of one context joined pipe to pipe, with no codec in between."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import constants as c
from ..connection import MAX_FLUSH_BATCH
from ..endpoint import Endpoint
from ..errors import ZMQError
from ..pipe import Pipe

if TYPE_CHECKING:
    from ..sockets.base import SocketCore


class InprocLink:
    """Moves messages from `pipe` (in `socket`) to `peer_pipe` (in `peer_socket`)."""

    def __init__(self, socket: SocketCore, pipe: Pipe, peer_socket: SocketCore, peer_pipe: Pipe):
        self.socket = socket
        self.pipe = pipe
        self.peer_socket = peer_socket
        self.peer_pipe = peer_pipe
        self.peer: InprocLink | None = None
        self.closed = False
        self.endpoint = ""

    def flush(self) -> None:
        pipe, target = self.pipe, self.peer_pipe
        pipe.flush_pending = False
        if self.closed:
            return
        outbox = pipe.outbox
        room = target.rcvhwm - target.backlog()
        if room <= 0:
            target.read_paused = True
            room = target.rcvhwm - target.backlog()  # re-check: see pipe.py
            if room <= 0:
                return
            target.read_paused = False
        n = min(len(outbox), room, MAX_FLUSH_BATCH)
        if n <= 0:
            return
        popleft = outbox.popleft
        batch = []
        for _ in range(n):
            try:
                batch.append(popleft())
            except IndexError:
                break
        pipe.written += len(batch)
        if self.peer_socket.routing_prefix:
            rid = target.routing_id
            batch = [[rid, *msg] for msg in batch]
        self.peer_socket.deliver(target, batch)
        self.socket.notify()
        if outbox and not pipe.flush_pending:
            pipe.flush_pending = True
            self.socket.loop.call_soon(self.flush)

    def write_direct(self) -> bool:
        return False  # inproc has no socket to write to; the loop moves the messages

    def resume_reading(self) -> None:
        # Our pipe was read from: the other direction may continue delivering into it.
        if self.pipe.read_paused and self.peer is not None:
            self.pipe.read_paused = False
            self.peer.flush()

    def close(self) -> None:
        for link in (self, self.peer):
            if link is not None and not link.closed:
                link.closed = True
                link.pipe.link = None
                link.socket.forget_peer(link.pipe)
                link.socket.detach(link.pipe)
                link.socket.links.discard(link)

    def abort(self) -> None:
        self.close()

    def finish(self, linger_ms: int) -> None:
        if linger_ms != 0:
            # Deliver what is queued regardless of the peer's high-water mark: it is in memory
            # already, and the peer socket outlives us.
            self.peer_pipe.rcvhwm = 1 << 62
            self.flush()
        self.close()


def join(
    a: SocketCore, b: SocketCore, a_pipe: Pipe | None = None, routing_id: bytes = b""
) -> InprocLink | None:
    """Connect socket `a` (connecting side) to `b` (bound side); None if they may not talk."""
    if b.socket_type not in c.COMPATIBLE_PEERS[a.socket_type]:
        return None
    pa = a_pipe if a_pipe is not None else a.new_pipe()
    pb = b.new_pipe()
    pa.routing_id = routing_id  # CONNECT_ROUTING_ID: how `a` (a ROUTER) names this peer
    pa.identity, pb.identity = b.options.routing_id, a.options.routing_id
    pa.peer_type, pb.peer_type = b.socket_type, a.socket_type
    if not b.accepts_peer(pb) or (a_pipe is None and not a.accepts_peer(pa)):
        return None
    # HWMs add up across the two halves in libzmq; each side here bounds its own direction.
    link_ab, link_ba = InprocLink(a, pa, b, pb), InprocLink(b, pb, a, pa)
    link_ab.peer, link_ba.peer = link_ba, link_ab
    pa.link, pb.link = link_ab, link_ba
    a.links.add(link_ab)
    b.links.add(link_ba)
    if a_pipe is None:
        a.attach(pa)
    b.attach(pb)
    if pa.outbox:
        pa.flush_pending = True
        a.kick(link_ab.flush)
    return link_ab


class InprocEndpoint:
    """A bound inproc name (bind side), or one connection to such a name (connect side)."""

    def __init__(self, socket: SocketCore, endpoint: Endpoint, pipe: Pipe | None = None) -> None:
        self.socket = socket
        self.name = endpoint.address
        self.endpoint = str(endpoint)
        self.pipe = pipe
        self.link: InprocLink | None = None
        self.routing_id = socket.options.connect_routing_id
        socket.options.connect_routing_id = b""  # it applies to the next connect only

    def close(self, drop_links: bool = True, linger_ms: int = 0) -> None:
        ctx = self.socket.context
        if ctx.inproc.get(self.name) is self.socket:
            del ctx.inproc[self.name]
        pending = ctx.inproc_pending.get(self.name)
        if pending and self in pending:
            pending.remove(self)
        if drop_links and self.link is not None:
            self.link.close()  # disconnect() ends this connection, as over tcp


def bind(socket: SocketCore, endpoint: Endpoint) -> InprocEndpoint:
    ctx = socket.context
    if endpoint.address in ctx.inproc:
        raise ZMQError(c.EADDRINUSE, f"inproc name already bound: {endpoint}")
    ctx.inproc[endpoint.address] = socket
    for waiting in ctx.inproc_pending.pop(endpoint.address, []):
        if not waiting.socket.closed:
            waiting.link = join(waiting.socket, socket, waiting.pipe, waiting.routing_id)
    return InprocEndpoint(socket, endpoint)


def connect(socket: SocketCore, endpoint: Endpoint) -> InprocEndpoint:
    ctx = socket.context
    bound = ctx.inproc.get(endpoint.address)
    ep = InprocEndpoint(socket, endpoint)
    if bound is not None:
        ep.link = join(socket, bound, None, ep.routing_id)
        if ep.link is None:
            raise ZMQError(c.ENOCOMPATPROTO, f"socket types cannot talk over {endpoint}")
        return ep
    # Connect before bind: queue in a pipe now, join when someone binds the name.
    if socket.queues_before_connect and not socket.options.immediate:
        ep.pipe = socket.new_pipe(persistent=True)
        socket.attach(ep.pipe)
    ctx.inproc_pending.setdefault(endpoint.address, []).append(ep)
    return ep
