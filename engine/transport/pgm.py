"""pgm:// and epgm:// on the I/O loop: one PGM session per endpoint.

A PUB or XPUB endpoint is a PGM source (`engine.pgm.sender`); a SUB or XSUB endpoint is a
receiver (`engine.pgm.receiver`) for every source on the group. ``epgm`` carries PGM in UDP
datagrams to and from the endpoint's port (data to the group, NAKs to the source's address);
``pgm`` uses a raw IP socket for protocol 113, which only root (CAP_NET_RAW) may open.

As in libzmq: multicast loopback is off (a publisher does not hear itself), MULTICAST_HOPS is
the TTL, RATE (kbit/s) caps what the source sends, RATE x RECOVERY_IVL sizes both windows, and
there is no subscription forwarding (the receiving socket filters).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .. import constants as c
from ..endpoint import Endpoint
from ..errors import ZMQError
from ..multicast_address import DatagramAddress, parse_pgm
from ..pgm import packets as wire
from ..pgm.receiver import GapReported, MessageReceived, PgmReceiver, ReceiverConfig
from ..pgm.sender import PgmSender, SenderConfig, window_sqns
from .datagram import DatagramChannel
from .datagram_link import DatagramLink
from .link_roles import LinkHost

log = logging.getLogger(__name__)

IP_HEADER = 20
UDP_HEADER = 8
#: Without MAXMSGSIZE, the most one message may hold. A receiver buffers a message until its
#: last packet: the cap bounds that per source. 16 MiB is over 11,000 packets, already more
#: than 20 minutes at libzmq's default rate of 100 kbit/s.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
#: Largest packet read: an IPv4 datagram (a raw socket returns the IP header too).
READ_SIZE = 65535
ROOT_NEEDED = (
    "pgm:// needs a raw IP socket, which only root (or CAP_NET_RAW) may open; "
    "epgm:// carries the same protocol over UDP without privilege"
)


@dataclass(slots=True)
class PgmSettings:
    """The socket options a PGM session reads (libzmq's defaults)."""

    rate_kbit: int = 100
    recovery_ivl_ms: int = 10000
    hops: int = 1
    max_tpdu: int = 1500
    max_message_size: int = -1
    sndbuf: int = -1
    rcvbuf: int = -1


def open_pgm_socket(address: DatagramAddress, settings: PgmSettings) -> socket.socket:
    """The session's socket, bound and joined to the group; ZMQError saying why if it cannot."""
    udp = address.scheme == "epgm"
    try:
        if udp:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, wire.IPPROTO_PGM)
    except PermissionError:
        raise ZMQError(c.EPERM, ROOT_NEEDED) from None
    except OSError as exc:
        raise ZMQError(exc.errno or c.EINVAL, str(address)) from None
    try:
        if udp:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # Data to the group and NAKs to this host both arrive at the endpoint's port.
            sock.bind(("0.0.0.0", address.port))
        group, iface = socket.inet_aton(address.host), socket.inet_aton(address.interface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group + iface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("i", settings.hops))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        if settings.sndbuf > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.sndbuf)
        if settings.rcvbuf > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, settings.rcvbuf)
    except OSError as exc:
        sock.close()
        raise ZMQError(exc.errno or c.EINVAL, str(address)) from None
    return sock


class PgmSession:
    """A PGM source or receiver bound to one socket, driven by the loop's reads and timers.

    A source takes messages with `send` (when `can_take` says it has room: the rest wait in
    the socket's pipe, under its high-water mark, as in libzmq). A receiver calls
    `on_messages` with each batch of messages read, and `on_gap` when packets were lost for
    good (their messages are dropped, never delivered broken).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        address: DatagramAddress,
        settings: PgmSettings,
        *,
        source: bool,
        gsi: bytes,
        source_port: int,
        on_messages: Callable[[list[list[bytes]]], None] | None = None,
        on_gap: Callable[[int], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.loop = loop
        self.address = address
        self.udp = address.scheme == "epgm"
        self.on_messages = on_messages
        self.on_gap = on_gap
        #: Called when a source can take more messages (its queue drained below one packet).
        self.on_ready = on_ready
        overhead = IP_HEADER + (UDP_HEADER if self.udp else 0)
        sqns = window_sqns(settings.rate_kbit, settings.recovery_ivl_ms, settings.max_tpdu)
        now = loop.time()
        self.sender: PgmSender | None = None
        self.receiver: PgmReceiver | None = None
        if source:
            self.sender = PgmSender(
                SenderConfig(
                    gsi=gsi,
                    source_port=source_port,
                    data_port=address.port,
                    nla=address.interface,
                    group=address.host,
                    max_tpdu=settings.max_tpdu,
                    ip_overhead=overhead,
                    rate=settings.rate_kbit * 1000 / 8,
                    window_sqns=sqns,
                ),
                now,
            )
        else:
            cap = settings.max_message_size
            self.receiver = PgmReceiver(
                ReceiverConfig(
                    data_port=address.port,
                    group=address.host,
                    window_sqns=sqns,
                    recovery_ivl=settings.recovery_ivl_ms / 1000,
                    max_message_size=cap if cap >= 0 else DEFAULT_MAX_MESSAGE_SIZE,
                )
            )
        sock = open_pgm_socket(address, settings)
        self.channel = DatagramChannel(loop, sock, READ_SIZE, self._on_datagrams)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.closed = False
        #: Gaps reported (each a run of packets lost for good).
        self.gaps = 0
        self._service()

    # -- source --------------------------------------------------------------------------------

    @property
    def sends(self) -> bool:
        return self.sender is not None

    def can_take(self) -> bool:
        """Room for more messages: less than one packet waiting for the rate to allow it."""
        sender = self.sender
        return sender is not None and not self.closed and sender.pending_bytes < sender.apdu_max

    def accept(self, outbox: deque[list[bytes]]) -> int:
        """Take queued messages while less than a packet's worth waits for the rate; the rest
        stays in the socket's pipe, under its high-water mark (as libzmq's pgm sender pulls)."""
        taken = 0
        while outbox and self.can_take():
            self.sender.send(outbox.popleft())  # type: ignore[union-attr]
            taken += 1
        if taken:
            self._service()
        return taken

    def send(self, messages: list[list[bytes]]) -> None:
        sender = self.sender
        assert sender is not None
        for frames in messages:
            sender.send(frames)
        self._service()

    # -- receiver ------------------------------------------------------------------------------

    def pause_reading(self) -> None:
        self.channel.pause_reading()

    def resume_reading(self) -> None:
        self.channel.resume_reading()

    # -- the loop ------------------------------------------------------------------------------

    def _on_datagrams(self, batch: list[tuple[bytes, tuple[str, int]]]) -> None:
        now = self.loop.time()
        for datagram, (host, _port) in batch:
            if not self.udp:
                try:
                    host, destination, datagram = wire.strip_ipv4(datagram)
                except wire.MalformedPacket:
                    continue
                # A raw socket sees every PGM packet to this host: keep the group's, and what
                # is addressed to this interface (NAKs to a source).
                if destination not in (self.address.host, self.address.interface):
                    continue
            if self.sender is not None:
                self.sender.packet_received(datagram, now)
            else:
                assert self.receiver is not None
                self.receiver.packet_received(datagram, host, now)
        self._service()

    def _service(self) -> None:
        """Run the state machine's timers, send what it has, hand over what it received, and
        set the next timer: once per wake-up, whatever woke it."""
        if self.closed:
            return
        now = self.loop.time()
        port = self.address.port
        sender, receiver = self.sender, self.receiver
        if sender is not None:
            sender.handle_timer(now)
            group = (self.address.host, port)
            for packet in sender.datagrams():
                self.channel.sendto(packet, group)
            due = sender.next_timer(now)
            if self.on_ready is not None and self.can_take():
                self.on_ready()
        else:
            assert receiver is not None
            receiver.handle_timer(now)
            for packet, host in receiver.datagrams():
                self.channel.sendto(packet, (host, port))
            events = receiver.events()
            if events:
                self._hand_over(events)
            due = receiver.next_timer()
        self._arm(due)

    def _hand_over(self, events: list[MessageReceived | GapReported]) -> None:
        messages: list[list[bytes]] = []
        for event in events:
            if isinstance(event, MessageReceived):
                messages.append(event.frames)
            else:
                if messages and self.on_messages is not None:
                    self.on_messages(messages)
                    messages = []
                self.gaps += 1
                log.warning(
                    "%s: %d packet(s) lost for good (gone from the source's window, or older "
                    "than RECOVERY_IVL); the messages in them were dropped, never delivered cut",
                    self.address,
                    event.lost,
                )
                if self.on_gap is not None:
                    self.on_gap(event.lost)
        if messages and self.on_messages is not None:
            self.on_messages(messages)

    def _arm(self, due: float | None) -> None:
        timer = self._timer
        if due is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
            return
        if timer is not None:
            if self._timer_at <= due:
                return  # an earlier wake-up is set; it will re-arm for this one
            timer.cancel()
        self._timer_at = due
        self._timer = self.loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._service()

    # -- closing -------------------------------------------------------------------------------

    @property
    def unsent(self) -> int:
        """Bytes a source still has to send (for LINGER)."""
        return self.sender.pending_bytes if self.sender is not None else 0

    def close(self) -> None:
        """A source announces its end (SPMs with OPT_FIN); then the socket closes."""
        if self.closed:
            return
        if self.sender is not None:
            self.sender.close()
            group = (self.address.host, self.address.port)
            for packet in self.sender.datagrams():
                self.channel.sendto(packet, group)
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.channel.close()


# -- the transport registry's entry points (TRANSPORTS["pgm"] and ["epgm"]) -----------------------

_SOURCES = {c.PUB, c.XPUB}
_RECEIVERS = {c.SUB, c.XSUB}


def bind(host: LinkHost, endpoint: Endpoint) -> DatagramLink:
    """For PGM, bind and connect are the same: join the group (libzmq)."""
    return connect(host, endpoint)


def connect(host: LinkHost, endpoint: Endpoint) -> DatagramLink:
    port = host.port
    kind = port.socket_type
    if kind not in _SOURCES and kind not in _RECEIVERS:
        name = c.SocketType(kind).name
        raise ZMQError(
            c.ENOCOMPATPROTO, f"{name} cannot use {endpoint.transport}:// (PUB/XPUB/SUB/XSUB only)"
        )
    text = f"{endpoint.transport}://{endpoint.address}"
    address = parse_pgm(text, endpoint.transport, endpoint.address)
    opts = port.options
    settings = PgmSettings(
        rate_kbit=opts.rate,
        recovery_ivl_ms=opts.recovery_ivl,
        hops=opts.multicast_hops,
        max_tpdu=opts.multicast_maxtpdu,
        max_message_size=opts.maxmsgsize,
        sndbuf=opts.sndbuf,
        rcvbuf=opts.rcvbuf,
    )
    source_port = random.choice([p for p in range(1024, 65536) if p != address.port])
    session = PgmSession(
        host.loop,
        address,
        settings,
        source=kind in _SOURCES,
        gsi=os.urandom(6),
        source_port=source_port,
    )
    return DatagramLink(host, text, session)
