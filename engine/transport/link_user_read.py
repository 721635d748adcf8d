"""A blocked sync-face thread reading its connection itself, instead of waiting for the I/O
thread to read, decode and wake it: two thread hand-offs fewer per message received.

`LinkUserRead` is the part of `ZMTPLink` (link.py) that a user thread runs, apart because it is
a concept of its own: its lease on the raw transport (rawsock.py's `user_read_begin`), the
read under the transport's `read_lock`, and handing the loop what only the loop may do. It
calls back into the link for `_after_codec`, `_protocol_failure` and `resume_reading`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..pipe import Pipe
from ..zmtp import ProtocolError, ZMTPConnection
from .rawsock import RawTransport

#: Longest a user thread waits for the loop to finish a read before it waits otherwise.
USER_READ_LOCK_S = 1.0


class LinkUserRead:
    """What a user thread blocked in recv may do on a raw transport: the state is ZMTPLink's."""

    __slots__ = ()  # ZMTPLink declares the slots

    transport: Any  # RawTransport or an asyncio transport
    port: Any  # pipe.SocketPort
    loop: asyncio.AbstractEventLoop
    pipe: Pipe
    codec: ZMTPConnection
    ready: bool
    closed: bool
    closing: bool
    last_recv: float

    def user_reader(self) -> RawTransport | None:
        """The transport a blocked user thread may read itself, when this link has one."""
        transport = self.transport
        if type(transport) is RawTransport and self.ready and not self.closing:
            return transport
        return None

    def read_now(self) -> bool | None:
        """User thread: decode what the socket holds, and deliver it (as the loop would, without
        waking it). True if messages were delivered, False if none were there, None if this
        thread may not read now (RCVHWM is reached): then waiting for the connection would
        spin. RCVHWM stops decoding as usual; the rest stays in the codec for this thread's
        next wait (or the loop, when the lease ends). What only the loop may do (heartbeat
        timers, PONGs and other output) is handed to it."""
        transport = self.transport
        lock = transport.read_lock
        # The loop may be reading just now: wait for it (briefly, GIL released) rather than
        # poll a socket that stays readable until it has read, which would spin.
        if not lock.acquire(True, USER_READ_LOCK_S):
            return False
        try:
            codec = self.codec
            pipe = self.pipe
            room = pipe.room()
            if room <= 0:
                return None
            if codec.input_pending:
                data = b""  # decoded before anything newer is read
            else:
                data = transport.recv_now()
                if data is None:
                    return False
            try:
                msgs = codec.receive_data(data, room)
            except ProtocolError as exc:
                transport.pause_reading()
                self.loop.call_soon_threadsafe(self._protocol_failure, exc)
                if exc.completed:  # what came before the fault is the peer's too
                    self.port.deliver(pipe, exc.completed, False)
                    return True
                return False
            if data:
                self.last_recv = self.loop.time()
            if codec.has_events or codec.has_output:
                transport.pause_reading()  # until the loop has acted on them
                self.loop.call_soon_threadsafe(self._after_user_read)
            if msgs:
                self.port.deliver(pipe, msgs, False)  # we are the waiter: no wake-up owed
                return True
            return False
        finally:
            lock.release()

    def input_ready(self) -> bool:
        """Decoded-ready bytes wait in the codec (a user thread's read stopped at RCVHWM)."""
        return self.codec.input_pending

    def lease_ended(self) -> None:
        """Loop side: the user thread stopped reading for itself; deliver what it left in the
        codec, as after a read of the loop's own."""
        if self.closed or not self.ready:
            return
        with self.transport.read_lock:
            if self.codec.input_pending and not self.pipe.read_paused:
                self.pipe.read_paused = True
                self.transport.pause_reading()
                self.resume_reading()

    def _after_user_read(self) -> None:
        """Loop side: what a user thread's read left for the loop (see read_now)."""
        transport = self.transport
        with transport.read_lock:
            if self.closed:
                return
            self._after_codec([])
            if not (self.pipe.read_paused or self.closed):
                transport.resume_reading()
