"""ZMTPLink: the thin asyncio glue between one stream transport, the codec and one pipe.

Everything here runs on the I/O loop, except `write_direct`. A read is decoded in one go and
handed to the socket as one batch (one wake-up); a flush takes everything queued in the pipe and
writes it with one call. The link sees its socket only through the pipe's `SocketPort`, and the
socket's transport side through `LinkHost`. Its handshake (ZAP, the deadline, the pipe attached
at its end) and heartbeats are link_handshake.py's `LinkHandshake`, and a sync-face thread's
reading for itself is link_user_read.py's `LinkUserRead`: it extends both, and ends as
link_roles.py's `LinkEnding`, where `LinkHost` and `LinkOwner` are declared.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from typing import Any, cast

from .. import constants as c
from ..errors import ZMQError
from ..native import NO_LOCK, native_lock
from ..options import queue_limit
from ..pipe import Pipe, take_front
from ..security.options import make_mechanism
from ..zmtp import (
    HandshakeComplete,
    PeerError,
    PingReceived,
    ProtocolError,
    ZapRequested,
    ZMTPConnection,
)
from .handshakes import pacer_for
from .heartbeats import HeartbeatWheel, WheelMember
from .link_handshake import LinkHandshake, peer_address, transport_fd
from .link_roles import LinkEnding, LinkHost, LinkOwner
from .link_user_read import LinkUserRead
from .rawsock import RawTransport
from .readbuf import read_buffer

log = logging.getLogger(__name__)

#: Most messages taken from a pipe per flush, so one busy pipe cannot hold the loop for long.
MAX_FLUSH_BATCH = 16384
#: About the most bytes encoded into one write (counted from the first queued message's size):
#: a write's bytes are one block, and glibc maps fresh pages for a block above 128 KiB on
#: every write. An asyncio PUSH of 1 KiB messages spent 1.2-1.3 µs of system time per message
#: in 1 MiB writes, 0.4-0.5 µs in 64 KiB ones. A PUB's links share one encoding: not chunked.
WRITE_CHUNK_BYTES = 64 * 1024
#: The bytes a frame adds to its body on the wire, at most (a long frame's header).
FRAME_HEADER_MAX = 9
#: The transport buffers up to this much before telling us to stop writing; big enough that a
#: flush of small messages fits, small enough to keep memory per connection modest.
WRITE_BUFFER_HIGH = 1024 * 1024


def _send_now(sock: Any, data: bytes) -> int | None:
    """One non-blocking send on an asyncio transport's socket: the bytes it took (0 when the
    socket is full), or None when the connection failed."""
    try:
        return sock.send(data)
    except (BlockingIOError, InterruptedError):
        return 0
    except OSError:
        return None


class ZMTPLink(LinkHandshake, LinkUserRead, LinkEnding, asyncio.BufferedProtocol):
    """One ZMTP connection of a socket.

    Buffered, so that asyncio's transports read into this thread's kept buffer (readbuf.py)
    instead of allocating 256 KiB per read; the sync face's RawTransport calls data_received.
    """

    # Slots, not a __dict__: with more than 30 attributes an instance dict no longer shares
    # its keys with the class's other instances, and cost 1,584 bytes per connection (of
    # 5,725 a ROUTER spent per accepted connection, tracemalloc); the slots cost 8 each.
    __slots__ = (
        "_failure_reported",
        "_handshake_left",
        "_held",
        "_linger_timer",
        "_next_ping",
        "_peer_address",
        "_peer_ttl",
        "_persistent_pipe",
        "_ping_sent",
        "_raw",
        "_resuming",
        "_shares_encoding",
        "_tail",
        "_timer",
        "_write_lock",
        "_written_mark",
        "_zap_id",
        "aborted",
        "closed",
        "closing",
        "codec",
        "ended_here",
        "fd",
        "heartbeat_slot",
        "heartbeat_wheel",
        "host",
        "last_recv",
        "loop",
        "lost",
        "owner",
        "pipe",
        "port",
        "protocol_failed",
        "ready",
        "transport",
        "write_paused",
    )

    def __init__(self, host: LinkHost, owner: LinkOwner, pipe: Pipe | None) -> None:
        #: A handshake read the loop's pacer holds back, and "the pacer is running it now".
        self._held: bytes | None = None
        self._resuming = False
        #: What was left of the handshake's deadline (HANDSHAKE_IVL) when its read was held:
        #: the clock stops while the read waits in this loop's own queue, a wait that is ours
        #: and not the peer's. Else a crowd of thousands that connect at once outlasts the
        #: deadline in the queue, and every late one is closed, redials and queues again.
        self._handshake_left: float | None = None
        self.host = host
        self.port = host.port
        self.owner = owner
        self.loop = host.loop
        #: A connect-side pipe that outlives connections; None until the handshake otherwise.
        self.pipe = pipe
        self._persistent_pipe = pipe is not None
        self.transport: asyncio.Transport | None = None
        self.fd = 0
        self.codec: ZMTPConnection | None = None
        self.ready = False
        self.closed = False
        self.closing = False  # finishing: write what is queued, then close
        self.aborted = False
        self.write_paused = False
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self.last_recv = 0.0
        self._ping_sent = 0.0
        self._next_ping = 0.0
        self._written_mark = 0  # the pipe's count of messages written, at the last PING check
        self._peer_ttl = 0.0
        #: The handshake's deadline (HANDSHAKE_IVL), then nothing: heartbeats run on a wheel.
        self._timer: asyncio.TimerHandle | None = None
        #: The socket's heartbeat wheel this link is checked by, once heartbeats started, and
        #: the slot of the wheel it sits in.
        self.heartbeat_wheel: HeartbeatWheel | None = None
        self.heartbeat_slot: dict[WheelMember, None] | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        # Writes may come from the loop or, for an idle link, straight from the user's thread
        # (see write_direct); the lock keeps the codec's output and the byte order whole.
        self._write_lock = NO_LOCK if host.same_thread else native_lock()
        self._raw: Any = None
        self._tail: bytes | None = None
        #: The ZAP request this connection's handshake waits for, if any.
        self._zap_id: bytes | None = None
        #: A HANDSHAKE_FAILED_* event went out already (libzmq reports one per connection).
        self._failure_reported = False
        self.protocol_failed = False
        self.ended_here = False
        #: A PUB/XPUB link without encryption: its encoded batches are shared (see
        #: _encode_queued); set at the handshake.
        self._shares_encoding = False
        #: The peer's address, as ZAP and the pipe's owner see it (see peer_address).
        self._peer_address = ""

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: asyncio's own, the sync face's RawTransport, or another loop's
        # (uvloop's are not asyncio.Transport subclasses, but have the same methods).
        self.transport = cast(asyncio.Transport, transport)
        self.fd = transport_fd(transport)
        self.owner.link_made(self)
        opts = self.port.options
        try:
            self._peer_address = peer_address(transport)
            mechanism = make_mechanism(self.owner.security, self._peer_address)
        except (ValueError, ZMQError) as exc:
            # The endpoint's kept options make no mechanism (bind/connect checked them, so
            # this is a bug's path), or the transport has no readable peer address.
            log.warning("cannot secure a connection on %s: %s", self.owner.endpoint, exc)
            self.codec = ZMTPConnection(self.port.socket_type)
            self.host.links.add(self)
            self._report_failure(c.EVENT_HANDSHAKE_FAILED_NO_DETAIL, c.EINVAL)
            self.abort()
            return
        self.codec = ZMTPConnection(
            self.port.socket_type,
            identity=opts.routing_id,
            app_metadata=opts.app_metadata,
            max_message_size=opts.maxmsgsize,
            mechanism=mechanism,
            bare_frames=True,  # the socket's FairQueue takes one-frame messages as bytes
        )
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        # asyncio's selector transports keep their socket here; without it, no direct writes.
        self._raw = getattr(transport, "_sock", None)
        # The greeting goes out at once: libzmq sends its own in stages and waits for ours.
        self._write(self.codec.data_to_send())
        self.last_recv = self.loop.time()
        if opts.handshake_ivl > 0:
            self._timer = self.loop.call_later(opts.handshake_ivl / 1000, self._handshake_expired)
        self.host.links.add(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(read_buffer()[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        if not self.ready and self.host.same_thread and self._hold(data):
            return
        codec = self.codec
        assert codec is not None
        try:
            msgs = codec.receive_data(data, self._room())
        except ProtocolError as exc:
            self._fault(exc)
            return
        self.last_recv = self.loop.time()
        self._after_codec(msgs)

    def _hold(self, data: bytes) -> bool:
        """A handshake read on the asyncio face, paced (see handshakes.py): True when it is
        over this pass's budget, its bytes kept for a later pass."""
        if self._resuming:
            return False  # the pacer's own turn for it
        pacer = pacer_for(self.loop)
        if pacer.admit():
            return False
        self._held = data
        self.transport.pause_reading()
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None
            self._handshake_left = max(0.0, timer.when() - self.loop.time())
        pacer.wait(self._resume_handshake)
        return True

    def _resume_handshake(self) -> None:
        """The pacer's turn for a held handshake read: read again, then decode what was held."""
        data, self._held = self._held, None
        if self.closed or data is None:
            return
        left, self._handshake_left = self._handshake_left, None
        if left is not None and not self.ready:
            self._timer = self.loop.call_later(left, self._handshake_expired)
        self.transport.resume_reading()
        self._resuming = True
        try:
            self.data_received(data)
        finally:
            self._resuming = False

    def _after_codec(self, msgs: list[list[bytes]]) -> None:
        """Act on what the codec produced: events, bytes to write, messages to deliver."""
        codec = self.codec
        if codec.has_events:
            self._handle_events()  # the handshake among them: the pipe exists from here on
            if self.closed or self.aborted or self._failure_reported:
                return
        if codec.has_output:
            self._write(codec.data_to_send())
        if msgs:
            self.port.deliver(self.pipe, msgs)
        if self.ready and (codec.input_pending or self._room() <= 0):
            self._pause_reading()

    def _room(self) -> int:
        """How many more messages the pipe takes before RCVHWM (decoding stops there)."""
        pipe = self.pipe
        if pipe is None:  # in the handshake: the pipe about to be made will have RCVHWM
            return queue_limit(self.port.options.rcvhwm)
        return pipe.room()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready:
            # libzmq reports a connection that ends mid-handshake (a refusal, a peer that gave
            # up), unless the reason was reported already; a clean end (no error) as EPIPE,
            # which its reads make of an orderly close.
            code = errno.EPIPE if exc is None else (getattr(exc, "errno", 0) or 0)
            self._report_failure(c.EVENT_HANDSHAKE_FAILED_NO_DETAIL, code)
        if self._zap_id is not None:
            self.host.zap_cancel(self._zap_id)
            self._zap_id = None
        self.closed = True
        for timer in (self._timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        if self.heartbeat_wheel is not None:
            self.heartbeat_wheel.discard(self)
        self.host.links.discard(self)
        port = self.port
        pipe = self.pipe
        if pipe is not None and pipe.link is self:
            pipe.link = None
            port.forget_peer(pipe)
            if not self._persistent_pipe:
                port.detach(pipe)
            else:
                # The pipe waits for the next connection. A SUB queues its subscriptions in
                # it again now, as libzmq's hiccup does at the loss, so they go out with the
                # next handshake whether or not the application is calling in by then (the
                # engine queued them at that handshake: an application busy elsewhere left
                # the new publisher without them until its next call).
                port.reattach(pipe)
        self._gone()

    # -- called through the pipe ------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything the user side queued: one transport write per WRITE_CHUNK_BYTES or
        so (one write in all for a request, a reply or a burst of short messages)."""
        pipe = self.pipe
        pipe.flush_pending = False
        if self.write_paused or not self.ready or self.closed:
            return
        lock = self._write_lock
        if lock is NO_LOCK:  # the loop's own thread (the asyncio face): nothing to exclude
            wrote = self._write_queued(self._write_locked)
        else:
            with lock:
                wrote = self._write_queued(self._write_locked)
        if wrote:
            self.port.notify()
        if self.closing:
            self._maybe_finish()

    eager = False  # a write is a system call: bursts are batched (pipe.FlushQueue)

    def write_direct(self) -> bool:
        """User thread: write the queue straight to the socket when the link is idle.

        This spares a request/reply exchange two thread hand-offs. On a raw transport (the
        sync face) any thread may write, in order; on an asyncio one only when nothing is
        buffered there, so bytes keep their order, and a short write leaves the rest to the
        loop. False means "not now": the caller schedules a normal flush.
        """
        if not self.ready or self.closing or self.closed or self.write_paused:
            return False
        transport = self.transport
        if type(transport) is RawTransport:
            with self._write_lock:
                self.pipe.flush_pending = False
                self._write_queued(transport.write)
            return True
        sock = self._raw
        if sock is None:
            return False
        lock = self._write_lock
        if not lock.acquire(False):
            return False
        try:
            if self._tail is not None or transport.get_write_buffer_size():
                return False
            pipe = self.pipe
            pipe.flush_pending = False
            data = self._encode_queued(MAX_FLUSH_BATCH)
            if not data:
                return True
            if pipe.outbox:  # more than one write's worth: the loop writes the rest
                pipe.flush_pending = True
                self.loop.call_soon_threadsafe(self.flush)
            sent = _send_now(sock, data)
            if sent is None:
                return True  # the connection is failing; the loop will see it and clean up
            if sent < len(data):
                self._tail = data[sent:]
                self.loop.call_soon_threadsafe(self._write, b"")
            return True
        finally:
            lock.release()

    def write_burst(self, wait: bool = False) -> None:
        """User thread, in a burst: write what is queued, on a raw transport (any thread may
        write there); the loop's flush, already scheduled, takes what comes after."""
        transport = self.transport
        if type(transport) is not RawTransport:
            return
        if not self.ready or self.closing or self.closed or self.write_paused:
            return
        with self._write_lock:
            self._write_queued(transport.write)

    def _write_queued(self, write: Callable[[bytes], None]) -> bool:
        """Under the write lock: encode what is queued and `write` it, one write per
        WRITE_CHUNK_BYTES or so, up to MAX_FLUSH_BATCH messages (a flush is scheduled for
        the rest) or until the transport asks us to stop. True if anything was written."""
        pipe = self.pipe
        outbox = pipe.outbox
        if len(outbox) == 1 and not self._shares_encoding:
            # One message (a request, a reply, an event for one CURVE subscriber): encoded
            # and written in one step, without the batch's chunking.
            try:
                msg = outbox.popleft()
            except IndexError:  # CONFLATE replaced it meanwhile
                return False
            pipe.written += 1
            write(self.codec.encode_one(msg))
            return True
        stop = pipe.written + MAX_FLUSH_BATCH
        wrote = False
        while outbox:
            if pipe.written >= stop:
                pipe.flush_pending = True
                self.loop.call_soon_threadsafe(self.flush)
                break
            data = self._encode_queued(stop - pipe.written)
            if not data:
                break
            write(data)
            wrote = True
            if self.write_paused or self.closed:
                break  # resume_writing flushes again
        return wrote

    def _encode_queued(self, most: int) -> bytes:
        """Take up to `most` queued messages, and about WRITE_CHUNK_BYTES of them, and encode
        them (under the write lock)."""
        pipe = self.pipe
        outbox = pipe.outbox
        n = len(outbox)
        if not n:
            return b""
        if n > 1 and not self._shares_encoding:
            try:
                first = outbox[0]
            except IndexError:  # CONFLATE replaced it meanwhile
                first = []
            per_write = WRITE_CHUNK_BYTES // (
                sum(map(len, first)) + FRAME_HEADER_MAX * len(first) + 1
            )
            if per_write < most:
                most = per_write if per_write > 0 else 1
        if n > most:
            n = most
        try:
            batch = take_front(outbox, n)
        except IndexError:  # CONFLATE replaced messages under us; take what is there
            batch = []
            while outbox:
                batch.append(outbox.popleft())
        pipe.written += len(batch)
        codec = self.codec
        if self._shares_encoding and not codec.has_output:
            # PUB/XPUB: every subscriber is usually sent the same batch; encode it once.
            flusher = pipe.flusher
            encoded = flusher.encoded
            if encoded is not None and encoded[0] == batch:
                return encoded[1]
            codec.send_messages(batch)
            data = codec.data_to_send()
            flusher.encoded = (batch, data)
            return data
        codec.send_messages(batch)
        return codec.data_to_send()

    def _write(self, data: bytes) -> None:
        """Loop side: every write of ours goes through here (or write_direct)."""
        with self._write_lock:
            self._write_locked(data)

    def _write_locked(self, data: bytes) -> None:
        transport = self.transport
        if transport.is_closing():
            return  # the connection is going; asyncio would only log each write as an error
        tail = self._tail
        if tail is not None:
            self._tail = None
            transport.write(tail)
        if not data:
            return
        sock = self._raw
        if sock is not None and not transport.get_write_buffer_size():
            # Nothing waits in the asyncio transport: the socket takes the bytes now, without
            # the transport's write around it (a broadcast makes one write per subscriber).
            # The rest, or all of it after an error, goes through that write, which closes
            # the link on the error.
            sent = _send_now(sock, data)
            if sent == len(data):
                return
            if sent:
                data = data[sent:]
        transport.write(data)

    def resume_reading(self) -> None:
        """The user side made room: deliver what is already decoded-ready, then read again."""
        pipe = self.pipe
        if pipe is None or not pipe.read_paused or self.closed:
            return
        room = self._room()
        if room <= 0:
            return
        codec = self.codec
        if codec.input_pending:
            try:
                msgs = codec.receive_data(b"", room)
            except ProtocolError as exc:
                if exc.completed:
                    self.port.deliver(pipe, exc.completed)
                self._protocol_failure(exc)
                return
            if msgs:
                self.port.deliver(pipe, msgs)
            if codec.input_pending or self._room() <= 0:
                return  # still full: the next credit brings us back here
        pipe.read_paused = False
        self.transport.resume_reading()

    def finish(self, linger_ms: int) -> None:
        """Close once queued messages are written, waiting at most LINGER (-1: no limit)."""
        self.closing = self.ended_here = True
        queued = self.pipe is not None and bool(self.pipe.outbox)
        if linger_ms == 0 or (not self.ready and not queued):
            self.abort()
            return
        if linger_ms > 0:
            self._linger_timer = self.loop.call_later(linger_ms / 1000, self.abort)
        if self.ready:  # otherwise the handshake's end flushes, then finishes
            self.flush()
            self._maybe_finish()

    # -- internals ------------------------------------------------------------------------------

    def _maybe_finish(self) -> None:
        if self.closing and not self.closed and (self.pipe is None or not self.pipe.outbox):
            self.transport.close()  # writes out what the transport still buffers, then closes

    def _pause_reading(self) -> None:
        pipe = self.pipe
        pipe.read_paused = True
        self.transport.pause_reading()
        # The user side may have caught up between our check and the flag (see pipe.py).
        if self._room() > 0:
            self.resume_reading()

    def _handle_events(self) -> None:
        codec = self.codec
        while codec.has_events:
            for event in codec.pop_events():
                if isinstance(event, HandshakeComplete):
                    self._handshake_done(event)
                elif isinstance(event, ZapRequested):
                    self._ask_zap(event.request)
                elif isinstance(event, PingReceived):
                    if event.ttl > 0:
                        self._peer_ttl = event.ttl
                        if self.heartbeat_wheel is None and self.ready:
                            self._start_heartbeats()
                elif isinstance(event, PeerError):
                    log.debug("peer %s sent ERROR: %s", self.owner.endpoint, event.reason)
                    self.protocol_failed = True
                    self.abort()
                    return
                if self.closed or self.aborted or self._failure_reported:
                    return

    def _protocol_failure(self, exc: ProtocolError) -> None:
        log.debug("closing %s: %s", self.owner.endpoint, exc)
        self.protocol_failed = True
        if not self.ready:
            # HANDSHAKE_FAILED_PROTOCOL with the ZMQ_PROTOCOL_ERROR_* code, _AUTH with the ZAP
            # status, or _NO_DETAIL: what libzmq reports for the same failure.
            self._report_failure(exc.event, exc.value)
        out = self.codec.data_to_send()
        if out:  # an ERROR command, if the codec chose to send one
            self._write(out)
            self.closing = True
            self.transport.close()
        else:
            self.abort()
