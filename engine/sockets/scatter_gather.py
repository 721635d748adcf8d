"""SCATTER, GATHER and CHANNEL: the thread-safe, single-frame forms of PUSH, PULL and PAIR.

SCATTER load-balances to the peers with room and blocks when none has; GATHER fair-queues what
its peers send; CHANNEL has exactly one peer. A multipart message received is dropped whole.
"""

from __future__ import annotations

from .. import constants as c
from ..pipe import Message
from .parts import LoadBalancer
from .threadsafe import ThreadSafeSocket


def _single_frames(socket: ThreadSafeSocket) -> Message | None:
    take = socket.inbox.take
    while True:
        msg = take()
        if msg is None or len(msg) == 1:
            return msg


class ScatterSocket(ThreadSafeSocket):
    socket_type = c.SCATTER

    def __init__(self, *args) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args)
        self.balancer = LoadBalancer(self.pipes)

    def _send(self, msg: Message) -> bool:
        return self.balancer.send(msg) is not None

    def can_send(self) -> bool:
        return self.balancer.any_ready()

    def can_recv(self) -> bool:
        return False


class GatherSocket(ThreadSafeSocket):
    socket_type = c.GATHER

    def _recv(self) -> Message | None:
        return _single_frames(self)


class ChannelSocket(ThreadSafeSocket):
    socket_type = c.CHANNEL
    single_peer = True

    def _send(self, msg: Message) -> bool:
        return any(pipe.offer(msg) for pipe in self.pipes)

    def _recv(self) -> Message | None:
        return _single_frames(self)

    def can_send(self) -> bool:
        return any(p.can_send() for p in self.pipes)
