"""SERVER, CLIENT and PEER (ZeroMQ RFC 41 and libzmq's PEER): request-reply without envelopes.

A SERVER names each connected peer with a 32-bit routing id (never 0) and tags every message it
receives with the id of the peer it came from; a reply goes to the peer whose id it carries,
and to an id that is not connected fails with EHOSTUNREACH. A CLIENT load-balances what it
sends and fair-queues what it receives. A PEER is a SERVER that also connects, and learns the id
of the peer it connected to (`connect_peer`). All of them take single-frame messages: a
multipart message received is dropped whole, as libzmq does.

Inside the engine a SERVER's or PEER's message is ``[routing id (4 bytes, big-endian), body]``;
the face turns the id into pyzmq's ``Frame.routing_id`` and ``send(..., routing_id=...)``.
"""

from __future__ import annotations

import random

from .. import constants as c
from ..errors import ZMQError
from ..pipe import Message, Pipe
from .reqrep import DealerSocket
from .threadsafe import ROUTING_ID, ThreadSafeSocket, single_frames

ID_SPACE = 1 << 32


def routing_id_bytes(routing_id: int) -> bytes:
    return routing_id.to_bytes(4, "big")


class ServerSocket(ThreadSafeSocket):
    """Routes replies by routing id; one frame per message."""

    socket_type = c.SERVER
    metadata = ROUTING_ID

    def __init__(self, *args) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args)
        # libzmq starts at a random id: ids of a restarted server do not collide with old ones.
        self._next_id = random.randrange(1, ID_SPACE)
        self._pipes: dict[int, Pipe] = {}
        self._ids: dict[Pipe, bytes] = {}
        #: The id of the peer attached last (PEER's connect_peer returns it).
        self.last_id = 0

    def pipe_attached(self, pipe: Pipe) -> None:
        rid = self._next_id
        while rid == 0 or rid in self._pipes:
            rid = (rid + 1) % ID_SPACE
        self._next_id = (rid + 1) % ID_SPACE
        self._pipes[rid] = pipe
        self._ids[pipe] = routing_id_bytes(rid)
        self.last_id = rid

    def pipe_detached(self, pipe: Pipe) -> None:
        rid = self._ids.pop(pipe, None)
        if rid is not None:
            del self._pipes[int.from_bytes(rid, "big")]

    def _send(self, msg: Message) -> bool:
        rid = int.from_bytes(msg[0], "big")
        pipe = self._pipes.get(rid)
        if pipe is None:
            raise ZMQError(c.EHOSTUNREACH, f"no peer with routing id {rid}")
        return pipe.offer(msg[1:])

    def _recv(self) -> Message | None:
        inbox = self.inbox
        while True:
            msg = inbox.take()
            if msg is None:
                return None
            pipe = inbox.pipe
            if len(msg) == 1 and pipe in self._ids:
                return [self._ids[pipe], msg[0]]

    def can_send(self) -> bool:
        return True  # whether a send goes through depends on the peer it names (libzmq)


class PeerSocket(ServerSocket):
    """A SERVER that connects: connect_peer() answers with the new peer's routing id."""

    socket_type = c.PEER


class ClientSocket(ThreadSafeSocket, DealerSocket):
    """DEALER's routing (load-balance out, fair-queue in), one frame per message."""

    socket_type = c.CLIENT

    def _recv(self) -> Message | None:
        return single_frames(self.inbox)
