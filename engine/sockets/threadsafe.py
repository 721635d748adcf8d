"""What libzmq's thread-safe socket types share (SERVER, CLIENT, RADIO, DISH, SCATTER, GATHER,
PEER, CHANNEL): any thread may use them at any time, and a message is one frame.

Every operation of the user side runs under the socket's lock, so two threads never touch the
routing state at once. Waiting happens outside the lock (the faces wait between attempts), so
one thread blocked in recv never holds up another one sending. Several threads may wait at
once: a wake-up is never taken back (`disarm` keeps the socket armed), so one waiter's success
cannot swallow the wake-up another still needs; the cost is at most one spare wake-up.

Single-frame messages are part of the contract (RFC 48 and the other draft socket RFCs): what
these types need besides the body (a RADIO/DISH group, a SERVER/PEER routing id) travels as a
first frame between the face and the socket, and only RADIO/DISH put it on the wire (as the
group frame ZMTP carries).
"""

from __future__ import annotations

from ..native import native_rlock
from ..pipe import Message, Pipe
from .base import SocketCore
from .parts import FairQueue

#: The first frame of a message at the face carries the group (RADIO, DISH).
GROUP = "group"
#: The first frame carries the peer's routing id, 4 bytes big-endian (SERVER, PEER).
ROUTING_ID = "routing_id"


class ThreadSafeSocket(SocketCore):
    """A SocketCore whose user-side operations are serialised by a lock."""

    thread_safe = True

    def __init__(self, *args) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args)
        self.lock = native_rlock()

    def send(self, msg: Message) -> bool:
        with self.lock:
            return super().send(msg)

    def recv(self) -> Message | None:
        with self.lock:
            return super().recv()

    def recv_sourced(self) -> tuple[Message, Pipe | None] | None:
        """A message with the pipe it came from, taken under the lock: another thread's take
        cannot come between (the pipe answers the Frame's metadata)."""
        with self.lock:
            msg = super().recv()
            return None if msg is None else (msg, getattr(self.inbox, "pipe", None))

    def events(self) -> int:
        with self.lock:
            return super().events()

    def process_commands(self) -> None:
        with self.lock:
            super().process_commands()

    def disarm(self) -> None:
        """Stay armed: another thread may be waiting on the same socket (see the module)."""


def single_frames(inbox: FairQueue) -> Message | None:
    """The next one-frame message; multipart ones (only a foreign peer sends them) are dropped
    whole, as libzmq's thread-safe types drop them."""
    take = inbox.take
    while True:
        msg = take()
        if msg is None or len(msg) == 1:
            return msg
