"""Raw non-blocking sockets for the sync face's tcp/ipc links, in place of asyncio transports.

asyncio's transports may only be touched from their loop's thread. The sync face wants more:
a user thread blocked in `recv` reads and decodes its connection itself (no hand-off from the
I/O thread, then another back), and a sender's thread writes straight to the socket. So each
link's socket sits in one epoll per I/O loop (`LinkPoller`), and any thread may change what the
loop watches it for, or take it out of the loop's hands (epoll_ctl is thread-safe, asyncio's
selector is not): level-triggered while the loop reads it, one-shot while it does not.

`RawTransport` offers the part of asyncio.Transport a ZMTPLink uses, and drives the link as
asyncio would (connection_made, data_received, eof_received, connection_lost, pause_writing,
resume_writing) on the loop. Reading takes `read_lock`, from the loop or from a user thread;
writing takes the transport's own lock, from any thread, so bytes keep their order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import select
import socket
from collections import deque
from typing import Any

from ..native import native_epoll, native_lock, native_rlock
from .readbuf import recv_bytes

log = logging.getLogger(__name__)

#: How long a user thread keeps reading its connection after its last blocked recv, before
#: the loop reads it again in the background (heartbeats, hang-ups, filling up to RCVHWM).
USER_LEASE_S = 0.01
#: Most buffers one sendmsg takes (Linux's IOV_MAX).
MAX_IOV = 1024
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_ONESHOT = select.EPOLLONESHOT
_TROUBLE = select.EPOLLERR | select.EPOLLHUP


class LinkPoller:
    """The raw links of one I/O loop: a nested epoll the loop watches as one reader."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.epoll = native_epoll()
        self.transports: dict[int, RawTransport] = {}
        loop.add_reader(self.epoll.fileno(), self._ready)
        #: Transports a user thread reads itself (see RawTransport.user_read_begin).
        self.leased: set[RawTransport] = set()
        self._lease_timer = False

    def lease(self, transport: RawTransport) -> None:
        """Any thread: `transport` is read by a user thread from now on; the loop takes it
        back once that thread stops coming (checked every USER_LEASE_S)."""
        self.leased.add(transport)
        if not self._lease_timer:
            self._lease_timer = True
            try:
                self.loop.call_soon_threadsafe(self._check_leases)
            except RuntimeError:
                pass  # the loop is gone

    def _check_leases(self) -> None:
        leased = self.leased
        for transport in list(leased):
            if transport.user_waiting or transport.user_came:
                transport.user_came = False
                continue
            leased.discard(transport)
            transport.user_reading = False
            transport._arm()
            ended = getattr(transport.protocol, "lease_ended", None)
            if ended is not None:
                ended()
        if leased:
            self.loop.call_later(USER_LEASE_S, self._check_leases)
        else:
            self._lease_timer = False

    def add(self, transport: RawTransport) -> None:
        fd = transport.fd
        self.transports[fd] = transport
        self.epoll.register(fd, _ONESHOT)

    def remove(self, transport: RawTransport) -> None:
        fd = transport.fd
        if self.transports.get(fd) is transport:
            del self.transports[fd]
            try:
                self.epoll.unregister(fd)
            except OSError:
                pass  # closed already

    def _ready(self) -> None:
        transports = self.transports
        for fd, events in self.epoll.poll(0):
            transport = transports.get(fd)
            if transport is not None:
                transport.on_events(events)


_pollers: dict[asyncio.AbstractEventLoop, LinkPoller] = {}
#: Every I/O thread (of every context) comes here for its loop's poller: the table, and the
#: sweep of closed loops' pollers, are shared between them.
_pollers_lock = native_lock()


def poller_for(loop: asyncio.AbstractEventLoop) -> LinkPoller:
    """The loop's LinkPoller, made on first use (on the loop's thread)."""
    poller = _pollers.get(loop)
    if poller is None or poller.loop.is_closed():
        with _pollers_lock:
            poller = _pollers.get(loop)
            if poller is None or poller.loop.is_closed():
                for old in [lp for lp in _pollers if lp.is_closed()]:
                    _pollers.pop(old).epoll.close()
                poller = _pollers[loop] = LinkPoller(loop)
    return poller


class RawTransport(asyncio.Transport):
    """One connected socket, read and written by whichever thread gets there (see module)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: Any) -> None:
        super().__init__()
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.protocol = protocol
        #: Held while bytes are read and decoded, by the loop or by a user thread (re-entrant:
        #: what the loop decodes may end the connection, which takes it again).
        self.read_lock = native_rlock()
        self._out_lock = native_lock()  # the write buffer and the epoll mask
        self._buffer: deque[bytes | memoryview] = deque()
        self._buffered = 0
        self._high = 64 * 1024
        self._low = 16 * 1024
        self._writing_paused = False
        self._reading_paused = False
        #: A user thread reads this socket itself (for a lease): the loop leaves it alone.
        self.user_reading = False
        #: The user thread is blocked reading it right now; it came since the last check.
        self.user_waiting = False
        self.user_came = False
        self._closing = False
        self._closed = False
        self._mask = _ONESHOT  # as registered: nothing until armed
        self._poller = poller_for(loop)
        self._poller.add(self)
        self._extra = {"socket": sock}
        try:
            self._extra["peername"] = sock.getpeername()
        except OSError:
            self._extra["peername"] = None
        protocol.connection_made(self)
        self._arm()

    # -- the epoll mask -------------------------------------------------------------------------

    def _arm(self) -> None:
        """Watch for what is wanted now: reading (unless paused, or a user thread reads) and
        writing (while bytes wait). Any thread; the one-shot mask is re-armed each time."""
        with self._out_lock:
            self._arm_locked()

    def _arm_locked(self) -> None:
        if self._closed:
            return
        if self._reading_paused or self.user_reading or self._closing:
            # Not reading: one-shot, so a hang-up (reported even unasked) fires once, not in
            # a loop; whoever resumes reading re-arms.
            mask = _ONESHOT | (_OUT if self._buffered else 0)
        else:
            # Reading: level-triggered, so the socket never leaves the epoll's ready list
            # between two reads, and bytes from several peers are read in arrival order.
            mask = _IN | (_OUT if self._buffered else 0)
        if mask == self._mask and not mask & _ONESHOT:
            return
        self._mask = mask
        try:
            self._poller.epoll.modify(self.fd, mask)
        except OSError:
            pass  # the socket went away under us; the loop notices and cleans up

    def on_events(self, events: int) -> None:
        """Loop side: the one-shot registration fired."""
        if events & _TROUBLE and (self._reading_paused or self.user_reading):
            # A hang-up fires even unasked: re-arming now would spin. Reading resumes (and
            # sees it) when the socket takes messages again, or the user thread sees it.
            if self._buffered:
                self._write_ready()
            return
        if events & _OUT or (events & _TROUBLE and self._buffered):
            self._write_ready()
        if events & (_IN | _TROUBLE) and not self._closed:
            self._read_ready()
        self._arm()

    # -- reading --------------------------------------------------------------------------------

    def _read_ready(self) -> None:
        if not self.read_lock.acquire(False):
            return  # a user thread is reading; it re-arms when it is done
        try:
            if self._reading_paused or self.user_reading or self._closing:
                return
            try:
                data = recv_bytes(self.sock)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fatal(exc)
                return
            if not data:
                self._eof()
                return
            self.protocol.data_received(data)
        finally:
            self.read_lock.release()

    def recv_now(self) -> bytes | None:
        """User thread, `read_lock` held: the bytes waiting (None: none yet). End of stream
        and errors are handed to the loop, which closes the connection."""
        if self._closing or self._closed or self._reading_paused:
            return None
        try:
            data = recv_bytes(self.sock)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            self._closing = True
            self._to_loop(self._fatal, exc)
            return None
        if not data:
            self._closing = True
            self._to_loop(self._eof)
            return None
        return data

    def _to_loop(self, fn: Any, *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop is gone (context terminated): nothing is left to close

    def _eof(self) -> None:
        if self._closed:
            return
        keep_open = self.protocol.eof_received()
        if not keep_open:
            self._closing = False  # close() below does the closing
            self.close()

    def pause_reading(self) -> None:
        self._reading_paused = True
        self._arm()

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._arm()

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def user_read_begin(self) -> bool:
        """User thread, about to block in recv: take reading over from the loop, for a lease
        (False: closing, or paused at RCVHWM). Call user_read_end when the wait is over."""
        if self._closing or self._closed or self._reading_paused:
            return False
        self.user_waiting = self.user_came = True
        if not self.user_reading:
            self.user_reading = True
            self._arm()
            self._poller.lease(self)
        return True

    def user_read_end(self) -> None:
        """User thread: the wait is over; the lease runs on while the thread keeps coming."""
        self.user_waiting = False

    # -- writing --------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Any thread. Written at once if nothing waits; the rest leaves when the socket
        can take it (the loop watches for that)."""
        if not data or self._closed:
            return
        with self._out_lock:
            if self._closed:
                # _lost ran since the look above, and it closes the socket under read_lock,
                # not this lock: a send now could meet the close, and a freed number.
                return
            if self._buffered:
                self._buffer.append(data)
                self._buffered += len(data)
            else:
                try:
                    sent = self.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as exc:
                    self._closing = True
                    self._to_loop(self._fatal, exc)
                    return
                if sent == len(data):
                    return
                rest = memoryview(data)[sent:]
                self._buffer.append(rest)
                self._buffered = len(rest)
                self._arm_locked()
            pause = self._buffered > self._high and not self._writing_paused
            if pause:
                self._writing_paused = True
        if pause:
            self.protocol.pause_writing()

    def _write_ready(self) -> None:
        """Loop side: the socket takes more; write what waits, without joining it first."""
        with self._out_lock:
            buffer = self._buffer
            if not buffer:
                return
            try:
                if len(buffer) == 1:
                    sent = self.sock.send(buffer[0])
                else:
                    sent = self.sock.sendmsg(list(itertools.islice(buffer, MAX_IOV)))
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                buffer.clear()
                self._buffered = 0
                self.loop.call_soon(self._fatal, exc)
                return
            self._buffered -= sent
            while sent:
                first = buffer[0]
                if sent >= len(first):
                    buffer.popleft()
                    sent -= len(first)
                else:
                    buffer[0] = memoryview(first)[sent:]
                    sent = 0
            resume = self._writing_paused and self._buffered <= self._low
            if resume:
                self._writing_paused = False
        if resume:
            # The link writes what it held back, and may close us once its queue is empty:
            # whether everything has gone out is known only after this.
            self.protocol.resume_writing()
        if self._closing and not self._closed and not self._buffered:
            self._lost(None)

    def get_write_buffer_size(self) -> int:
        return self._buffered

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is not None:
            self._high = high
            self._low = high // 4 if low is None else low
        elif low is not None:
            self._low = low

    def can_write_eof(self) -> bool:
        return False

    # -- closing --------------------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing or self._closed

    def close(self) -> None:
        """Loop side: stop reading; close once what is buffered has been written."""
        if self._closing or self._closed:
            return
        self._closing = True
        self._arm()
        if not self._buffered:
            self.loop.call_soon(self._lost, None)

    def abort(self) -> None:
        self._lost(None)

    def _fatal(self, exc: BaseException) -> None:
        log.debug("connection error on fd %d: %s", self.fd, exc)
        self._lost(exc)

    def _lost(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closing = True
        with self._out_lock:
            self._closed = True
            self._buffer.clear()
            self._buffered = 0
            self._poller.remove(self)
            self._poller.leased.discard(self)
        with self.read_lock:  # a user thread reading now finishes first
            self.sock.close()
        self.loop.call_soon(self.protocol.connection_lost, exc)
