"""PUSH, PULL (ZeroMQ RFC 30) and PAIR (RFC 31): the socket types with the simplest routing."""

from __future__ import annotations

from .. import constants as c
from ..pipe import Message
from .base import SocketCore
from .parts import LoadBalancer


class PushSocket(SocketCore):
    """Load-balances to the peers that have room; blocks when none has."""

    socket_type = c.PUSH
    waits_at_first_frame = True

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.balancer = LoadBalancer(self.pipes)

    def send(self, msg: Message) -> bool:
        # SocketCore.send, one call shorter: this is every PUSH message's path.
        if self.traffic is not None:
            return SocketCore.send(self, msg)
        if self._commands:
            self.process_commands()
        return self.balancer.send(msg) is not None

    def _send(self, msg: Message) -> bool:
        return self.balancer.send(msg) is not None

    def sends_directly(self) -> bool:
        return True

    def can_send(self) -> bool:
        return self.balancer.any_ready()

    def can_recv(self) -> bool:
        return False


class PullSocket(SocketCore):
    """Fair-queues what its peers push, one read's worth per peer at a time."""

    socket_type = c.PULL
    sends_messages = False

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.refresh_direct()

    def takes_directly(self) -> bool:
        return True

    def recv(self) -> Message | None:
        # SocketCore.recv with the fair-queue's common case inline: every PULL message's path.
        if self.traffic is not None:
            return SocketCore.recv(self)
        if self._commands:
            self.process_commands()
        if self._prefetched is not None:
            return self._take_prefetched()
        inbox = self.inbox
        pos = inbox.pos
        batch = inbox.batch
        if pos < len(batch):
            inbox.pos = pos + 1
            msg = batch[pos]
            return [msg] if type(msg) is bytes else msg
        return self._recv_or_pull()

    def _recv(self) -> Message | None:
        return self.inbox.take()


class PairSocket(SocketCore):
    """Exactly one peer; a second connection is refused while the first lives."""

    socket_type = c.PAIR
    single_peer = True
    waits_at_first_frame = True

    def _recv(self) -> Message | None:
        return self.inbox.take()

    def _send(self, msg: Message) -> bool:
        return any(pipe.offer(msg) for pipe in self.pipes)

    def sends_directly(self) -> bool:
        return True

    def can_send(self) -> bool:
        return any(p.can_send() for p in self.pipes)
