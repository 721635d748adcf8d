"""STREAM: plain tcp/ipc connections, each named by a routing id, as libzmq's ZMQ_STREAM.

No ZMTP travels: what a connection's peer writes arrives as [routing id, the bytes of one
read], and [routing id, bytes] writes them to that connection. An empty message both ways
means the connection itself: received, a peer connected or went (STREAM_NOTIFY, on by
default); sent, close it once what was queued before is written. The transport side is
transport/raw_link.py; this module only routes, as ROUTER does.
"""

from __future__ import annotations

import itertools

from .. import constants as c
from ..errors import ZMQError
from ..pipe import Message, Pipe
from .reqrep import RouterSocket


class StreamSocket(RouterSocket):
    """A ROUTER whose peers are plain connections: its own routing ids, no handover, and
    frames sent in (routing id, data) pairs."""

    socket_type = c.STREAM
    _generated_ids = itertools.count(0x2A7F3C11)

    def accepts_peer(self, pipe: Pipe) -> bool:
        rid = pipe.routing_id  # CONNECT_ROUTING_ID, on the connect side
        if not rid:
            rid = self._generated_id()
            # As libzmq: ROUTING_ID then reads the id given last, which is how its manual
            # has a program learn the id of the connection its connect() made.
            self.options.routing_id = rid
        old = self.routes.get(rid)
        if old is not None and not old.closed:
            return False  # the id is taken, as a ROUTER refuses it
        pipe.routing_id = rid
        self.routes[rid] = pipe
        return True

    def _send(self, msg: Message) -> bool:
        # Frames alternate routing id and data, as libzmq reads them (it ignores a data
        # frame's MORE flag, so a third frame names the next connection); a last routing id
        # with no data after it is dropped. All or nothing: each target is found, and has
        # room, before any is written to.
        writes = [(self._route(msg[at]), msg[at + 1]) for at in range(0, len(msg) - 1, 2)]
        if any(data and not pipe.has_room() for pipe, data in writes):
            return False  # SNDHWM: would block
        for pipe, data in writes:
            # An empty message goes whatever the high-water mark: the link closes the
            # connection when it reaches it.
            pipe.push([data])
        return True

    def start_message(self, first: bytes) -> bool:
        # An unknown connection is EHOSTUNREACH at its id, and a full one Again, as in libzmq.
        return self._route(first).has_room()

    def _route(self, rid: bytes) -> Pipe:
        pipe = self.routes.get(rid)
        if pipe is None or pipe.closed:
            if self._commands:  # the connection may have been made a moment ago
                self.process_commands()
                pipe = self.routes.get(rid)
            if pipe is None or pipe.closed:
                raise ZMQError(c.EHOSTUNREACH, "no connection with that routing id")
        return pipe
