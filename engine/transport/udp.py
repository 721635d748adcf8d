"""udp:// on the I/O loop: RADIO sends, DISH receives, DGRAM does both (libzmq's udp engine).

One datagram is one message. Inside the engine a RADIO/DISH message is ``[group, body]`` (the
same two frames it is over tcp) and a DGRAM message is ``[b"a.b.c.d:port", body]``; this module
turns those into datagrams (`engine.udp_datagram`) and back.

Socket setup follows libzmq: a receiving endpoint on a multicast group binds every address at
the port (with SO_REUSEADDR and SO_REUSEPORT, so several receivers share it) and joins the group
on the named interface; on a unicast address it binds that address. A sending endpoint sends to
its target, through the named interface for a group, with MULTICAST_HOPS as the TTL and
MULTICAST_LOOP deciding whether this host hears its own multicast.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .. import constants as c
from .. import udp_datagram as udp
from ..endpoint import Endpoint
from ..errors import ZMQError
from ..multicast_address import ANY, DatagramAddress, parse_udp
from .datagram import DatagramChannel
from .datagram_link import DatagramLink
from .link_roles import LinkHost

RADIO, DISH, DGRAM = "radio", "dish", "dgram"


@dataclass(slots=True)
class UdpSettings:
    """The socket options a udp endpoint reads (libzmq's defaults)."""

    hops: int = 1
    multicast_loop: bool = True
    sndbuf: int = -1
    rcvbuf: int = -1


def open_udp_socket(
    address: DatagramAddress, settings: UdpSettings, *, receive: bool, send: bool
) -> socket.socket:
    """A UDP socket set up as libzmq's udp engine sets it up; ZMQError saying why if it fails."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if settings.sndbuf > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.sndbuf)
        if settings.rcvbuf > 0:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, settings.rcvbuf)
        iface = socket.inet_aton(address.interface)
        if send and address.multicast:
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(settings.multicast_loop)
            )
            if settings.hops > 0:
                ttl = struct.pack("i", settings.hops)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
            if address.interface != ANY:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
        if receive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if address.multicast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((ANY, address.port))
                group = socket.inet_aton(address.host)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group + iface)
            else:
                sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise ZMQError(exc.errno or c.EINVAL, str(address)) from None
    return sock


class UdpSession:
    """One udp endpoint of a RADIO, DISH or DGRAM socket."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        address: DatagramAddress,
        settings: UdpSettings,
        *,
        role: str,
        binding: bool,
        on_messages: Callable[[list[list[bytes]]], None] | None = None,
    ) -> None:
        self.role = role
        self.address = address
        receive = role in (DISH, DGRAM)
        send = role in (RADIO, DGRAM)
        if receive and not binding and not address.multicast:
            # A connecting receiver listens on every address at the target's port (libzmq).
            address = DatagramAddress("udp", ANY, address.port, address.interface, False)
        sock = open_udp_socket(address, settings, receive=receive, send=send)
        port = sock.getsockname()[1]
        if receive and address.port == 0:
            self.address = DatagramAddress(
                "udp", self.address.host, port, address.interface, address.multicast
            )
        self.target = (self.address.host, self.address.port)
        self.codec = udp.DatagramCodec()
        self.on_messages = on_messages
        self.channel = DatagramChannel(
            loop, sock, udp.READ_SIZE, self._on_datagrams if receive else None
        )
        #: Messages that could not become a datagram (too large, a bad DGRAM address).
        self.unsendable = 0
        self.sends = send
        #: A datagram leaves (or is dropped) at once: nothing waits for a rate.
        self.unsent = 0
        self.on_ready: Callable[[], None] | None = None

    @property
    def endpoint(self) -> str:
        """The endpoint as bound (the port the kernel chose for port 0)."""
        return str(self.address)

    def accept(self, outbox: deque[list[bytes]]) -> int:
        """Send every queued message (DatagramLink's side)."""
        batch = [outbox.popleft() for _ in range(len(outbox))]
        self.send(batch)
        return len(batch)

    def send(self, messages: list[list[bytes]]) -> None:
        """Each message as one datagram: [group, body] (RADIO) or [address, body] (DGRAM)."""
        channel = self.channel
        for message in messages:
            if len(message) != 2:
                self.unsendable += 1
                continue
            head, body = message
            try:
                if self.role == DGRAM:
                    peer = udp.parse_peer(head)
                    if peer is None:
                        self.unsendable += 1
                        continue
                    channel.sendto(udp.encode_raw(body), peer)
                else:
                    channel.sendto(udp.encode_radio(head, body), self.target)
            except ValueError:  # DatagramTooLarge, InvalidGroup
                self.unsendable += 1

    def _on_datagrams(self, batch: list[tuple[bytes, tuple[str, int]]]) -> None:
        messages: list[list[bytes]] = []
        decode, decode_raw = self.codec.decode, self.codec.decode_raw
        for datagram, (host, port) in batch:
            if self.role == DGRAM:
                body = decode_raw(datagram)
                if body is not None:
                    messages.append([udp.format_peer(host, port), body])
            else:
                split = decode(datagram)
                if split is not None:
                    messages.append([split[0], split[1]])
        if messages and self.on_messages is not None:
            self.on_messages(messages)

    def pause_reading(self) -> None:
        self.channel.pause_reading()

    def resume_reading(self) -> None:
        self.channel.resume_reading()

    def close(self) -> None:
        self.channel.close()


# -- the transport registry's entry points (engine.transport.TRANSPORTS["udp"]) ------------------

#: Which side of udp each socket type may take (libzmq: RADIO only sends, so it only connects).
_ROLES = {c.RADIO: RADIO, c.DISH: DISH, c.DGRAM: DGRAM}
_BINDS = {c.DISH, c.DGRAM}


def bind(host: LinkHost, endpoint: Endpoint) -> DatagramLink:
    return _open(host, endpoint, binding=True)


def connect(host: LinkHost, endpoint: Endpoint) -> DatagramLink:
    return _open(host, endpoint, binding=False)


def _open(host: LinkHost, endpoint: Endpoint, binding: bool) -> DatagramLink:
    port = host.port
    role = _ROLES.get(port.socket_type)
    if role is None or (binding and port.socket_type not in _BINDS):
        action = "bind to" if binding else "connect to"
        raise ZMQError(
            c.ENOCOMPATPROTO, f"{c.SocketType(port.socket_type).name} cannot {action} udp"
        )
    text = f"udp://{endpoint.address}"
    address = parse_udp(text, endpoint.address, binding)
    opts = port.options
    settings = UdpSettings(opts.multicast_hops, bool(opts.multicast_loop), opts.sndbuf, opts.rcvbuf)
    session = UdpSession(host.loop, address, settings, role=role, binding=binding)
    return DatagramLink(host, session.endpoint if binding else text, session)
