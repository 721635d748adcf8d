"""Addresses of the datagram transports: ``udp://``, ``pgm://`` and ``epgm://``, as libzmq reads them.

udp (libzmq's udp_address.cpp)::

    udp://[INTERFACE;]HOST:PORT

HOST is an IPv4 address or name (a DNS name only when connecting), or ``*`` when binding.
INTERFACE (an address, a NIC name such as ``eth0``, or ``*``) is allowed only with a multicast
HOST, and chooses the interface that joins the group (binding) or sends to it (connecting).
Binding to a unicast HOST listens there; binding to a group listens on every address at PORT and
joins the group.

pgm and epgm (OpenPGM's network specification, the simple form libzmq documents)::

    pgm://[INTERFACE;]GROUP:PORT

GROUP must be multicast. INTERFACE is an address or NIC name; without it (or with ``*``) the
interface the kernel would route the group through is used, since PGM must name a real address
(its NAKs come back to it).

Only IPv4: libzmq's udp has no IPv6 yet, and the engine's PGM speaks IPv4 NLAs.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from dataclasses import dataclass

from . import constants as c
from .errors import ZMQError

#: Linux ioctl that reads an interface's IPv4 address (struct ifreq in, ifreq out).
SIOCGIFADDR = 0x8915
#: IFNAMSIZ: longest interface name plus its NUL.
IFNAMSIZ = 16
ANY = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class DatagramAddress:
    """A resolved udp/pgm/epgm address."""

    scheme: str
    #: The multicast group, or for unicast udp the host to bind or send to.
    host: str
    port: int
    #: The local interface's address (ANY when none was named for udp).
    interface: str
    multicast: bool

    def __str__(self) -> str:
        if self.scheme == "udp" and not self.multicast:
            return f"udp://{self.host}:{self.port}"
        return f"{self.scheme}://{self.interface};{self.host}:{self.port}"


def _invalid(endpoint: str, why: str) -> ZMQError:
    return ZMQError(c.EINVAL, f"invalid endpoint {endpoint!r}: {why}")


def interface_address(name: str) -> str | None:
    """The IPv4 address of the network interface `name` (e.g. ``eth0``), or None."""
    if not 0 < len(name) < IFNAMSIZ:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            request = struct.pack(f"{IFNAMSIZ}s{256 - IFNAMSIZ}x", name.encode())
            reply = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
        except (OSError, UnicodeEncodeError):
            return None
    return socket.inet_ntoa(reply[20:24])


def route_address(group: str, port: int) -> str:
    """This host's address on the interface the kernel would use to reach `group`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((group, port or 9))  # a UDP connect sends nothing, it only routes
        except OSError as exc:
            raise ZMQError(c.ENODEV, f"no route to {group}: {exc.strerror}") from None
        return probe.getsockname()[0]


def _literal(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def _interface(endpoint: str, text: str) -> str:
    """An interface given as ``*``, an address, or a NIC name, as its address."""
    if text == "*":
        return ANY
    literal = _literal(text)
    if literal is not None:
        if literal.is_multicast:
            raise _invalid(endpoint, "the interface cannot be a multicast address")
        return str(literal)
    address = interface_address(text)
    if address is None:
        raise ZMQError(c.ENODEV, f"no IPv4 interface named {text!r} in {endpoint!r}")
    return address


def _host_port(endpoint: str, text: str, binding: bool, resolve: bool) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise _invalid(endpoint, "expected host:port")
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise _invalid(endpoint, f"bad port {port_text!r}")
    port = int(port_text)
    if port == 0 and not binding:
        raise _invalid(endpoint, "cannot send to port 0")
    if host == "*":
        if not binding:
            raise _invalid(endpoint, "cannot send to a wildcard host")
        return ANY, port
    if _literal(host) is None:
        if not resolve:
            raise _invalid(endpoint, f"{host!r} is not an IPv4 address")
        try:
            host = socket.gethostbyname(host)
        except OSError:
            raise ZMQError(c.EINVAL, f"cannot resolve {host!r} in {endpoint!r}") from None
    return host, port


def parse_udp(endpoint: str, rest: str, binding: bool) -> DatagramAddress:
    """`rest` is what follows ``udp://``."""
    interface_text, sep, target = rest.rpartition(";")
    host, port = _host_port(endpoint, target, binding, resolve=not binding)
    multicast = ipaddress.IPv4Address(host).is_multicast
    if sep and not multicast:
        raise _invalid(endpoint, "an interface can only be given with a multicast address")
    interface = _interface(endpoint, interface_text) if sep else ANY
    return DatagramAddress("udp", host, port, interface, multicast)


def parse_pgm(endpoint: str, scheme: str, rest: str) -> DatagramAddress:
    """`rest` is what follows ``pgm://`` or ``epgm://``."""
    interface_text, sep, target = rest.rpartition(";")
    group, port = _host_port(endpoint, target, binding=False, resolve=False)
    if not ipaddress.IPv4Address(group).is_multicast:
        raise _invalid(endpoint, f"{group} is not a multicast group")
    interface = _interface(endpoint, interface_text) if sep else ANY
    if interface == ANY:
        interface = route_address(group, port)
    return DatagramAddress(scheme, group, port, interface, True)
