"""A non-blocking datagram socket on the I/O loop: batched reads, queued writes.

The udp and pgm/epgm transports both sit on one of these. Reads happen when the loop says the
socket is readable, up to `READ_BATCH` datagrams per wake-up, handed over in one call. Writes
go straight to the kernel; when its buffer is full they wait in a bounded queue and leave when
the socket is writable again. A datagram transport may lose packets, so a full queue, or an
error the network gives for one packet (a firewall's EPERM, ENOBUFS, an unreachable host),
drops that datagram and counts it; nothing here raises into the loop.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable

#: Datagrams read per wake-up: enough to amortise the wake-up, few enough that one busy
#: multicast group does not starve the loop's other sockets.
READ_BATCH = 64
#: Datagrams waiting for room in the kernel's send buffer. Beyond this the newest is dropped:
#: a datagram transport loses rather than grows without bound.
OUT_QUEUE_MAX = 4096

Address = tuple[str, int]
OnDatagrams = Callable[[list[tuple[bytes, Address]]], None]


class DatagramChannel:
    """One datagram socket registered with `loop`; `on_datagrams` gets each read batch."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        read_size: int,
        on_datagrams: OnDatagrams | None,
    ) -> None:
        sock.setblocking(False)
        self.loop = loop
        self.sock = sock
        self.read_size = read_size
        self.on_datagrams = on_datagrams
        self._out: deque[tuple[bytes, Address]] = deque()
        self._writing = False
        self._reading = False
        self.closed = False
        #: Datagrams that did not leave: queue full, or the network refused them (a firewall's
        #: EPERM, ENOBUFS, an unreachable host: for a datagram these mean "this one is lost").
        self.send_dropped = 0
        #: The errno of the last refused send, to say why in a diagnostic.
        self.last_send_error = 0
        #: Receive errors the kernel reported (ICMP errors queued on the socket, for example).
        self.receive_errors = 0
        if on_datagrams is not None:
            self.resume_reading()

    # -- reading -------------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if self._reading and not self.closed:
            self._reading = False
            self.loop.remove_reader(self.sock.fileno())

    def resume_reading(self) -> None:
        if not self._reading and not self.closed and self.on_datagrams is not None:
            self._reading = True
            self.loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        batch: list[tuple[bytes, Address]] = []
        recvfrom, size = self.sock.recvfrom, self.read_size
        for _ in range(READ_BATCH):
            try:
                batch.append(recvfrom(size))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.receive_errors += 1  # e.g. an ICMP error for an earlier send: go on
                continue
        if batch and self.on_datagrams is not None:
            self.on_datagrams(batch)

    # -- writing -------------------------------------------------------------------------------

    def sendto(self, data: bytes, address: Address) -> None:
        if self.closed:
            return
        if self._out:
            self._queue(data, address)
            return
        try:
            self.sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            self._queue(data, address)
        except OSError as exc:
            self._refused(exc)

    def _queue(self, data: bytes, address: Address) -> None:
        if len(self._out) >= OUT_QUEUE_MAX:
            self.send_dropped += 1
            return
        self._out.append((data, address))
        if not self._writing:
            self._writing = True
            self.loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        out, sendto = self._out, self.sock.sendto
        while out:
            data, address = out[0]
            try:
                sendto(data, address)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._refused(exc)
            out.popleft()
        self._writing = False
        self.loop.remove_writer(self.sock.fileno())

    def _refused(self, exc: OSError) -> None:
        self.send_dropped += 1
        self.last_send_error = exc.errno or 0

    @property
    def queued(self) -> int:
        """Datagrams waiting for room in the kernel's buffer."""
        return len(self._out)

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.pause_reading()
        if self._writing:
            self.loop.remove_writer(self.sock.fileno())
            self._writing = False
        self.closed = True
        self._out.clear()
        self.sock.close()
