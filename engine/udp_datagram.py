"""libzmq's ``udp://`` datagrams, sans I/O: RADIO/DISH's layout and DGRAM's peer addresses.

RADIO/DISH put one message in one datagram, laid out by libzmq's udp engine as::

    +--------------+----------------------+------------------------+
    | group length | group (0..255 bytes) | body (the rest)        |
    |   1 byte     |                      |                        |
    +--------------+----------------------+------------------------+

No version, no flags, no checksum beyond UDP's: a datagram is a whole message or nothing. DGRAM
(raw mode) sends the body alone, and addresses it with a first frame ``b"a.b.c.d:port"`` which
libzmq also uses to tell the receiver where a datagram came from.

Nothing here trusts the network: `DatagramCodec.decode` returns None for a datagram that cannot
be one of these (and counts it), it never raises.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

#: Longest group: RFC 48 and libzmq's ZMQ_GROUP_MAX_LENGTH; it also is what one length byte holds.
GROUP_MAX = 255
#: Longest datagram libzmq sends or reads (its udp engine's MAX_UDP_MSG buffers). A longer one
#: would be truncated by a libzmq receiver (and overruns a libzmq sender's buffer), so the engine
#: never sends one, and reading more than this is pointless: `recvfrom` uses this size.
DATAGRAM_MAX = 8192
#: Bytes to ask `recvfrom` for: one more than a datagram may have, so a longer one shows as
#: such (and is dropped) instead of arriving cut to size as a shorter, corrupt message.
READ_SIZE = DATAGRAM_MAX + 1


class DatagramTooLarge(ValueError):
    """The message does not fit in one libzmq datagram (`DATAGRAM_MAX` bytes)."""


class InvalidGroup(ValueError):
    """A group longer than `GROUP_MAX` bytes."""


def check_group(group: bytes) -> bytes:
    """`group` if it is a valid RADIO/DISH group; InvalidGroup otherwise."""
    if len(group) > GROUP_MAX:
        raise InvalidGroup(f"group is {len(group)} bytes; the limit is {GROUP_MAX}")
    return group


def encode_radio(group: bytes, body: bytes) -> bytes:
    """One RADIO datagram; DatagramTooLarge when it exceeds `DATAGRAM_MAX`."""
    check_group(group)
    size = 1 + len(group) + len(body)
    if size > DATAGRAM_MAX:
        raise DatagramTooLarge(f"a {size}-byte datagram exceeds libzmq's {DATAGRAM_MAX} bytes")
    return b"".join((len(group).to_bytes(1, "big"), group, body))


def encode_raw(body: bytes) -> bytes:
    """One DGRAM datagram: the body as is, within `DATAGRAM_MAX`."""
    if len(body) > DATAGRAM_MAX:
        raise DatagramTooLarge(f"a {len(body)}-byte datagram exceeds libzmq's {DATAGRAM_MAX} bytes")
    return body


def format_peer(host: str, port: int) -> bytes:
    """DGRAM's address frame for an IPv4 peer, as libzmq writes it: ``b"10.0.0.1:5555\\0"``
    (a C string: libzmq counts the terminating NUL into the frame)."""
    return f"{host}:{port}\0".encode("ascii")


def parse_peer(frame: bytes) -> tuple[str, int] | None:
    """(IPv4 host, port) from a DGRAM address frame; None unless it is ``a.b.c.d:port``, with
    or without libzmq's terminating NUL, port 1-65535 (libzmq rejects port 0 and non-IPv4
    hosts the same way)."""
    if frame.endswith(b"\0"):
        frame = frame[:-1]
    try:
        text = frame.decode("ascii")
        host, _, port_text = text.rpartition(":")
        address = ipaddress.IPv4Address(host)
        port = int(port_text, 10)
    except (UnicodeDecodeError, ValueError):
        return None
    if not port_text.isdigit() or not 0 < port < 65536:
        return None
    return str(address), port


@dataclass(slots=True)
class DatagramCodec:
    """Splits datagrams into messages; counts what it had to drop, never raises."""

    #: Datagrams read, whether usable or not.
    received: int = 0
    #: Dropped: empty, or shorter than the group length they announce.
    malformed: int = 0
    #: Dropped: longer than `DATAGRAM_MAX` (read with `READ_SIZE`, so never silently cut).
    oversize: int = 0

    def decode(self, datagram: bytes) -> tuple[bytes, bytes] | None:
        """(group, body) of a RADIO datagram, or None (counted) if it cannot be one."""
        self.received += 1
        if len(datagram) > DATAGRAM_MAX:
            self.oversize += 1
            return None
        if not datagram or len(datagram) < 1 + datagram[0]:
            self.malformed += 1
            return None
        end = 1 + datagram[0]
        return datagram[1:end], datagram[end:]

    def decode_raw(self, datagram: bytes) -> bytes | None:
        """The body of a DGRAM datagram (any bytes, even none), or None (counted) if oversize."""
        self.received += 1
        if len(datagram) > DATAGRAM_MAX:
            self.oversize += 1
            return None
        return datagram

    @property
    def dropped(self) -> int:
        return self.malformed + self.oversize
