"""DGRAM (libzmq's draft raw-UDP socket): each message is [peer address, body].

Only udp:// carries it. A DGRAM binds (or connects) one udp endpoint and sends any datagram to
any address: the first frame names it (``b"a.b.c.d:port"``), the second is the body. What it
receives comes as the same two frames, the first saying where the datagram came from. It is not
thread-safe (libzmq's DGRAM is not) and a message is exactly two frames, else EINVAL.
"""

from __future__ import annotations

from .. import constants as c
from ..errors import ZMQError
from ..pipe import Message
from .base import SocketCore


class DgramSocket(SocketCore):
    socket_type = c.DGRAM
    single_peer = True

    def _send(self, msg: Message) -> bool:
        if len(msg) != 2:
            raise ZMQError(c.EINVAL, "a DGRAM message is two frames: address and body")
        return any(pipe.offer(msg) for pipe in self.pipes)

    def _recv(self) -> Message | None:
        return self.inbox.take()

    def can_send(self) -> bool:
        return any(p.can_send() for p in self.pipes)
