"""STREAM: plain tcp/ipc connections, each named by a routing id, as libzmq's ZMQ_STREAM.

The routing is raw_routing's (shared with a ROUTER that has ROUTER_RAW); STREAM adds only its
own generated ids. The transport side is transport/raw_link.py.
"""

from __future__ import annotations

import itertools

from .. import constants as c
from ..pipe import Message, Pipe
from .raw_routing import accepts_raw_peer, raw_route, send_raw
from .reqrep import RouterSocket


class StreamSocket(RouterSocket):
    """A ROUTER whose peers are plain connections: its own routing ids, no handover, and
    frames sent in (routing id, data) pairs."""

    socket_type = c.STREAM
    _generated_ids = itertools.count(0x2A7F3C11)

    def accepts_peer(self, pipe: Pipe) -> bool:
        return accepts_raw_peer(self, pipe)

    def _send(self, msg: Message) -> bool:
        return send_raw(self, msg)

    def start_message(self, first: bytes) -> bool:
        # An unknown connection is EHOSTUNREACH at its id, and a full one Again, as in libzmq.
        return raw_route(self, first).has_room()
