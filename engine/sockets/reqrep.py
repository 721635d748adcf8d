"""REQ, REP, DEALER and ROUTER (ZeroMQ RFC 28): request-reply with envelopes."""

from __future__ import annotations

import itertools

from .. import constants as c
from ..errors import ZMQError
from ..options import queue_limit
from ..pipe import Batch, Message, Pipe
from .base import SocketCore
from .parts import LoadBalancer
from .raw_routing import accepts_raw_peer, raw_route, send_raw

DELIMITER = b""


class DealerSocket(SocketCore):
    """A load-balancer out and a fair-queue in; no envelope handling."""

    socket_type = c.DEALER
    waits_at_first_frame = True

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.balancer = LoadBalancer(self.pipes)

    def _send(self, msg: Message) -> bool:
        return self.balancer.send(msg) is not None

    def sends_directly(self) -> bool:
        return True

    def _recv(self) -> Message | None:
        return self.inbox.take()

    def can_send(self) -> bool:
        return self.balancer.any_ready()


class ReqSocket(DealerSocket):
    """Strict send/recv alternation; the reply must come from the peer that got the request."""

    socket_type = c.REQ

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._awaiting = False
        self._reply_pipe: Pipe | None = None
        self._request_id = 0

    def sends_directly(self) -> bool:
        return False  # each request is stamped and remembered

    def start_message(self, first: bytes) -> bool:
        self._check_may_ask()
        return super().start_message(first)

    def _check_may_ask(self) -> None:
        # A reply a poll took ahead (events()), or the rest of one the face hands out a frame
        # at a time, is still the application's to receive.
        receiving = self._awaiting or self._prefetched is not None or self.face_holds_rest
        if receiving and not self.options.req_relaxed:
            raise ZMQError(c.EFSM, "REQ socket must recv the reply before sending again")

    def _send(self, msg: Message) -> bool:
        self._check_may_ask()
        self._prefetched = None  # REQ_RELAXED: a new request; the old one's reply is stale
        self._drop_unread()
        if self.options.req_correlate:
            request_id = (self._request_id + 1) & 0xFFFFFFFF
            pipe = self.balancer.send([request_id.to_bytes(4, "big"), DELIMITER, *msg])
            if pipe is not None:
                self._request_id = request_id
        else:
            pipe = self.balancer.send([DELIMITER, *msg])
        if pipe is None:
            return False
        self._awaiting = True
        self._reply_pipe = pipe
        return True

    def _drop_unread(self) -> None:
        """What has arrived and is unread goes before a new request, as libzmq drops it: a
        reply that came after the REQ stopped waiting for it (REQ_RELAXED sent anew, or the
        request's reply came twice) must not pass for the next request's."""
        take = self.inbox.take
        while True:
            while take() is not None:
                pass
            if not (self.held_by_senders and self._pulled()):
                return  # (what inproc senders held back is available too: see reader_busy)

    def _recv(self) -> Message | None:
        if not self._awaiting:
            raise ZMQError(c.EFSM, "REQ socket must send a request before recv")
        correlate = self.options.req_correlate
        inbox = self.inbox
        while True:
            msg = inbox.take()
            if msg is None:
                return None
            # Replies from other peers and stale replies are dropped, as libzmq drops them. So
            # is a malformed one (no delimiter), where libzmq ends that connection as a
            # protocol error and the REQ, its peer gone, waits for ever: kept lenient.
            if inbox.pipe is not self._reply_pipe:
                continue
            if correlate:
                if len(msg) < 3 or msg[1] != DELIMITER:
                    continue
                if msg[0] != self._request_id.to_bytes(4, "big"):
                    continue
                body = msg[2:]
            else:
                if len(msg) < 2 or msg[0] != DELIMITER:
                    continue
                body = msg[1:]
            self._awaiting = False
            self._reply_pipe = None
            return body

    def can_send(self) -> bool:
        free = not (self._awaiting or self.face_holds_rest) and self._prefetched is None
        return (free or bool(self.options.req_relaxed)) and self.balancer.any_ready()

    def can_recv(self) -> bool:
        return self._awaiting


class RepSocket(SocketCore):
    """Receives a request, then must send exactly one reply with the request's envelope."""

    socket_type = c.REP

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._envelope: Message | None = None
        self._reply_pipe: Pipe | None = None

    def _recv(self) -> Message | None:
        if self._envelope is not None:
            raise ZMQError(c.EFSM, "REP socket must send a reply before receiving again")
        inbox = self.inbox
        while True:
            msg = inbox.take()
            if msg is None:
                return None
            try:
                split = msg.index(DELIMITER) + 1
            except ValueError:
                continue  # no envelope delimiter: not a request, drop it
            if split == len(msg):
                continue
            self._envelope = msg[:split]
            self._reply_pipe = inbox.pipe
            return msg[split:]

    def start_message(self, first: bytes) -> bool:
        self._check_may_reply()
        return True  # a reply to a full peer is dropped, not waited for (libzmq)

    def _check_may_reply(self) -> None:
        # A request a poll took ahead (events()) has its envelope kept, but the application
        # has not received it yet (nor the rest of one it reads a frame at a time).
        if self._envelope is None or self._prefetched is not None or self.face_holds_rest:
            raise ZMQError(c.EFSM, "REP socket must recv a request before sending")

    def _send(self, msg: Message) -> bool:
        self._check_may_reply()
        envelope, pipe = self._envelope, self._reply_pipe
        self._envelope = self._reply_pipe = None
        # A reply to a departed peer (or one that is not reading) is dropped, as libzmq does.
        if pipe is not None and pipe.has_room() and (pipe.link is not None or pipe.persistent):
            pipe.push(envelope + msg)
        return True

    def can_send(self) -> bool:
        return self._envelope is not None and self._prefetched is None and not self.face_holds_rest

    def can_recv(self) -> bool:
        return self._envelope is None


class RouterSocket(SocketCore):
    """Adds its peer's routing id in front of each message it takes from the fair-queue, and
    routes what it sends by that first frame."""

    socket_type = c.ROUTER
    queues_before_connect = False
    _generated_ids = itertools.count(0x6B8B4567)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        #: routing id -> pipe. Written on the loop at handshake, read by the user side.
        self.routes: dict[bytes, Pipe] = {}
        #: The message being given a frame at a time found its peer at its first frame.
        self._routed_at_start = False
        #: Peers whose id was taken when they came (loop side), each with what it delivered
        #: meanwhile: see _park.
        self._parked: dict[Pipe, list[Batch]] = {}
        #: The parked peers by the id they wait for, first come first: a holder that leaves
        #: finds its successor without a look at every parked peer.
        self._waiting: dict[bytes, list[Pipe]] = {}

    def accepts_peer(self, pipe: Pipe) -> bool:
        if self.options.router_raw:
            return accepts_raw_peer(self, pipe)  # its link speaks no ZMTP: see raw_routing
        rid = pipe.routing_id or pipe.identity or self._generated_id()
        pipe.routing_id = rid
        old = self.routes.get(rid)
        if old is not None and not old.closed:
            if not self.options.router_handover:
                self._park(pipe)
                return True
            self._retire(old)
        self.routes[rid] = pipe
        return True

    def _park(self, pipe: Pipe) -> None:
        """A newcomer whose id is taken (no ROUTER_HANDOVER) stays connected, unheard and
        unrouted, as libzmq keeps it. The engine closed its connection, so the peer redialled
        every RECONNECT_IVL, each time a new accept and handshake (CURVE's included) for the
        same refusal. What it sends is held, up to RCVHWM as any peer's, and then its link
        stops reading. The first peer that announced the id gets it when its holder leaves
        (libzmq's never does), with what it sent meanwhile."""
        pipe.sndhwm = 0  # never written to (nor writable under ROUTER_MANDATORY)
        self._parked[pipe] = []
        self._waiting.setdefault(pipe.routing_id, []).append(pipe)

    def deliver(self, pipe: Pipe, batch: Batch, wake: bool = True) -> None:
        if self._parked:
            held = self._parked.get(pipe)
            if held is not None:
                held.append(batch)
                pipe.delivered += len(batch)  # (counted against its RCVHWM all the same)
                return
        SocketCore.deliver(self, pipe, batch, wake)

    def apply_hwms(self) -> None:
        super().apply_hwms()
        for pipe in list(self._parked):
            pipe.sndhwm = 0  # (still unwritable: see _park)

    def _generated_id(self) -> bytes:
        """An id for a peer that announced none: a zero byte (which a peer's own id may not
        begin with), then four of a counter, as libzmq makes them."""
        return b"\x00" + (next(self._generated_ids) & 0xFFFFFFFF).to_bytes(4, "big")

    def _retire(self, pipe: Pipe) -> None:
        """ROUTER_HANDOVER: the peer that held an id gives it up to a newcomer, as in libzmq.
        Its pipe takes a generated id (what it delivered and is still unread comes with that
        id, never the newcomer's) and carries nothing more either way, but its connection
        stays open, unread: closing it would make a reconnecting peer take the id back, and
        the two would trade it for ever (the engine's ROUTER did that, every RECONNECT_IVL)."""
        pipe.routing_id = self._generated_id()
        pipe.rcvhwm = 0  # no room: its link decodes and delivers no more
        pipe.closed = True  # and nothing is sent to it

    def peer_address(self, routing_id: bytes) -> str:
        """The address of the peer routed by ``routing_id`` ("" if none or unknown)."""
        pipe = self.routes.get(routing_id)
        return "" if pipe is None else pipe.peer_address

    def forget_peer(self, pipe: Pipe) -> None:
        rid = pipe.routing_id
        if self._parked.pop(pipe, None) is not None:
            self._unpark(rid, pipe)
            return
        if self.routes.get(rid) is pipe:
            del self.routes[rid]
            if rid in self._waiting:
                self._admit_parked(rid)

    def _unpark(self, rid: bytes, pipe: Pipe) -> None:
        waiting = self._waiting[rid]
        waiting.remove(pipe)  # (among the few that wait for one id)
        if not waiting:
            del self._waiting[rid]

    def _admit_parked(self, rid: bytes) -> None:
        """The id's holder left: the first peer parked with that id takes it (see _park)."""
        pipe = self._waiting[rid][0]
        self._unpark(rid, pipe)
        held = self._parked.pop(pipe)
        pipe.sndhwm = queue_limit(self.options.sndhwm)
        self.routes[rid] = pipe
        pipe.delivered -= sum(map(len, held))  # (counted again as they are delivered now)
        for batch in held:
            SocketCore.deliver(self, pipe, batch)
        if pipe.read_paused and pipe.link is not None:
            self.flusher.kick(pipe.link.resume_reading)

    def start_message(self, first: bytes) -> bool:
        # libzmq routes a message at its first frame: under ROUTER_MANDATORY an unknown peer
        # is EHOSTUNREACH there and a full one Again (or a wait), and a peer gone before the
        # last frame drops it quietly. Without it, whatever cannot go is dropped.
        if self.options.router_raw:
            return raw_route(self, first).has_room()
        if self.options.router_mandatory:
            pipe = self._peer(first)
            if pipe is not None and not pipe.has_room():
                return False
            self._routed_at_start = True
        return True

    def _peer(self, rid: bytes) -> Pipe | None:
        """The pipe routed by `rid`; None if there is none (EHOSTUNREACH if MANDATORY)."""
        pipe = self.routes.get(rid)
        if pipe is None or pipe.closed:
            if self._commands:  # the peer may have connected a moment ago
                self.process_commands()
                pipe = self.routes.get(rid)
            if pipe is None or pipe.closed:
                if self.options.router_mandatory:
                    raise ZMQError(c.EHOSTUNREACH, "no peer with that routing id")
                return None
        return pipe

    def _send(self, msg: Message) -> bool:
        if len(msg) < 2:
            return True  # a routing id alone carries nothing to deliver
        if self.options.router_raw:
            return send_raw(self, msg)
        pipe = self.routes.get(msg[0])
        if pipe is None or pipe.closed:
            return self._send_unrouted(msg)
        if pipe.queued - pipe.written >= pipe.sndhwm and not pipe.has_room():
            # (the first test is has_room's, inlined for every send; has_room then hands
            # an inproc peer what it has room for)
            if self.options.router_mandatory:
                return False  # "would block" under ROUTER_MANDATORY: the message is kept
        else:
            pipe.push(msg[1:])
        if self._routed_at_start:
            self._routed_at_start = False
        return True  # sent, or dropped at a full peer

    def _send_unrouted(self, msg: Message) -> bool:
        """No peer by that id just now: one that connected a moment ago is looked for; else
        the message is dropped (EHOSTUNREACH under MANDATORY, unless it found its peer at
        its first frame and the peer left since, which libzmq drops quietly)."""
        try:
            pipe = self._peer(msg[0])
        except ZMQError:
            if not self._routed_at_start:
                raise
            pipe = None
        if pipe is not None:
            return self._send(msg)
        self._routed_at_start = False
        return True

    def _recv(self) -> Message | None:
        inbox = self.inbox
        msg = inbox.take()
        if msg is None:
            return None
        return [inbox.pipe.routing_id, *msg]

    def can_send(self) -> bool:
        # libzmq's answer: always writable (a message to a full or unknown peer is dropped),
        # but under ROUTER_MANDATORY only while some peer has room for one.
        return not self.options.router_mandatory or any(p.has_room() for p in self.pipes)
