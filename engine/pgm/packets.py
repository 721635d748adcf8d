"""PGM packets (RFC 3208) as OpenPGM puts them on the wire, sans I/O: parse and build.

The subset libzmq's pgm/epgm transports use: SPM (source path message: "I exist, my window is
trail..lead, NAK me at this address"), ODATA and RDATA (original and repair data), NAK and NCF
(negative acknowledgement and its confirmation), SPMR (SPM request), and the options those carry
(OPT_LENGTH, OPT_NAK_LIST, OPT_FRAGMENT, OPT_FIN). POLL, POLR and ACK (PGMCC) parse as
`Unsupported`: valid, and of no use here.

Every packet starts with this header (16 bytes, network order)::

    source port | destination port | type | options | checksum | GSI (6 bytes) | TSDU length

A source is named by its TSI: the 6-byte GSI plus its source port. Packets from a source carry
(sport = TSI port, dport = data port); packets to it (NAK, SPMR) swap the two. The checksum is
the Internet checksum of the whole PGM packet, computed with OpenPGM's fold, under which a sum
of 0xffff stays 0xffff, so 0 always means "no checksum" (allowed except on data packets).

`parse` raises `MalformedPacket` for anything that is not a well-formed packet of this subset;
the state machines above it catch that, count it and drop the packet. Nothing is trusted:
lengths are checked against the bytes present before anything is read.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

IPPROTO_PGM = 113

# -- packet types (RFC 3208 section 8) -------------------------------------------------------
SPM = 0x00
POLL = 0x01
POLR = 0x02
ODATA = 0x04
RDATA = 0x05
NAK = 0x08
NNAK = 0x09
NCF = 0x0A
SPMR = 0x0C
ACK = 0x0D

# -- header option flags -----------------------------------------------------------------------
FLAG_OPT_PRESENT = 0x01
FLAG_OPT_NETWORK = 0x02
FLAG_PARITY = 0x80

# -- options (section 9): each is type (with END in its top bit), length, a flags byte, fields --
OPT_LENGTH = 0x00
OPT_FRAGMENT = 0x01
OPT_NAK_LIST = 0x02
OPT_FIN = 0x0E
OPT_END = 0x80
OPT_TYPE_MASK = 0x7F

AFI_IP = 1
AFI_IP6 = 2

HEADER = struct.Struct("!HHBBH6sH")
HEADER_SIZE = HEADER.size  # 16
DATA_HEADER = struct.Struct("!II")  # sequence, trailing edge
SPM_FIXED = struct.Struct("!III")  # SPM sequence, trailing edge, leading edge
NAK_SQN = struct.Struct("!I")
OPT_LENGTH_SIZE = 4
#: An option is at least type, length, the OPX/U flags byte and one byte of its own.
OPT_MIN_SIZE = 4
OPT_FRAGMENT_SIZE = 16
#: RFC 3208 9.1: at most 16 options in one packet.
OPTIONS_MAX = 16
#: RFC 3208 9.3: OPT_NAK_LIST holds at most 62 more sequence numbers (one NAK asks for 63).
NAK_LIST_MAX = 62
#: Sequence numbers one NAK or NCF can name: the one in its body plus a full list.
NAK_SQNS_MAX = 1 + NAK_LIST_MAX
#: NLA (network layer address) sizes by AFI.
NLA_SIZE = {AFI_IP: 4, AFI_IP6: 16}
#: The checksum field's offset in the header.
CHECKSUM_OFFSET = 6


#: Sequence numbers are 32-bit and wrap (RFC 3208 section 6: serial number arithmetic).
SQN_MASK = 0xFFFFFFFF
#: Half the sequence space: a distance at or past this means "before", not "after".
SQN_HALF = 1 << 31


def sqn_distance(later: int, earlier: int) -> int:
    """How far `later` is after `earlier`, modulo 2**32 (>= SQN_HALF: it is actually before)."""
    return (later - earlier) & SQN_MASK


class MalformedPacket(ValueError):
    """Bytes that are not a well-formed PGM packet of the subset spoken here."""


# -- checksum ------------------------------------------------------------------------------------


def ones_complement_sum(data: bytes | bytearray | memoryview) -> int:
    """The 16-bit ones' complement sum of `data` (zero-padded to even length).

    Read as one big base-65536 number, the data is congruent modulo 0xffff to the sum of its
    16-bit words (65536 = 1 mod 0xffff), which is what end-around carry computes; the only
    ambiguity, 0 versus 0xffff, is settled by whether any bit is set. One C-level conversion
    instead of a Python loop over words.
    """
    if len(data) & 1:
        data = bytes(data) + b"\0"
    number = int.from_bytes(data, "big")
    if number == 0:
        return 0
    return number % 0xFFFF or 0xFFFF


def checksum(packet: bytes | bytearray | memoryview) -> int:
    """OpenPGM's checksum of a packet whose checksum field is zero: the complement of the sum,
    except that a sum of 0xffff is sent as is (so no packet ever carries 0, "no checksum")."""
    total = ones_complement_sum(packet)
    return total if total == 0xFFFF else ~total & 0xFFFF


def _with_checksum(packet: bytearray) -> bytes:
    struct.pack_into("!H", packet, CHECKSUM_OFFSET, checksum(packet))
    return bytes(packet)


def _checksum_ok(packet: bytes, carried: int) -> bool:
    zeroed = bytearray(packet)
    zeroed[CHECKSUM_OFFSET : CHECKSUM_OFFSET + 2] = b"\0\0"
    return checksum(zeroed) == carried


# -- addresses -----------------------------------------------------------------------------------


def _nla_bytes(address: str) -> bytes:
    """AFI, reserved and the address, as an NLA field."""
    ip = ipaddress.ip_address(address)
    afi = AFI_IP if ip.version == 4 else AFI_IP6
    return struct.pack("!HH", afi, 0) + ip.packed


def _read_nla(body: bytes, offset: int) -> tuple[str, int]:
    """(address, offset after it) of the NLA at `offset`; MalformedPacket if cut or unknown."""
    if len(body) < offset + 4:
        raise MalformedPacket("truncated NLA")
    (afi,) = struct.unpack_from("!H", body, offset)
    size = NLA_SIZE.get(afi)
    if size is None:
        raise MalformedPacket(f"unknown NLA address family {afi}")
    start = offset + 4
    if len(body) < start + size:
        raise MalformedPacket("truncated NLA")
    return str(ipaddress.ip_address(body[start : start + size])), start + size


# -- parsed packets ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spm:
    """Source path message: the source's window and the address to send NAKs to."""

    gsi: bytes
    sport: int
    dport: int
    spm_sqn: int
    trail: int
    lead: int
    nla: str
    fin: bool = False


@dataclass(frozen=True, slots=True)
class Data:
    """ODATA or RDATA: one TPDU of a source's stream at sequence `sqn`."""

    gsi: bytes
    sport: int
    dport: int
    sqn: int
    trail: int
    payload: bytes
    repair: bool = False
    #: OPT_FRAGMENT (first sequence, offset, APDU length) when the TPDU is part of a bigger APDU.
    fragment: tuple[int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class Nak:
    """NAK (receiver to source), NCF (source to group) or N-NAK: sequences asked for repair.

    `gsi` and `source_port` name the source whose data is meant (for a NAK, the header's
    destination port; for an NCF, its source port). `data_port` is the session's data port."""

    kind: int
    gsi: bytes
    source_port: int
    data_port: int
    sqns: tuple[int, ...]
    source_nla: str
    group_nla: str


@dataclass(frozen=True, slots=True)
class Spmr:
    """SPM request from a receiver: please send an SPM now."""

    gsi: bytes
    source_port: int
    data_port: int


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A valid packet of a type this subset does not use (POLL, POLR, ACK)."""

    kind: int


Packet = Spm | Data | Nak | Spmr | Unsupported


# -- options -----------------------------------------------------------------------------------


def _read_options(packet: bytes, start: int) -> tuple[dict[int, bytes], int]:
    """({option type: its bytes after type and length}, offset after the options).

    The block must open with OPT_LENGTH (4 bytes) giving the whole block's length; the options
    in it are walked until one carries OPT_END, each checked to lie inside the block."""
    if len(packet) < start + OPT_LENGTH_SIZE:
        raise MalformedPacket("truncated option block")
    kind, length, total = struct.unpack_from("!BBH", packet, start)
    if kind != OPT_LENGTH or length != OPT_LENGTH_SIZE:
        raise MalformedPacket("option block does not open with OPT_LENGTH")
    end = start + total
    if total < OPT_LENGTH_SIZE + OPT_MIN_SIZE or end > len(packet):
        raise MalformedPacket(f"option block length {total} does not fit")
    options: dict[int, bytes] = {}
    at = start + OPT_LENGTH_SIZE
    for _ in range(OPTIONS_MAX):
        if at + 2 > end:
            raise MalformedPacket("option runs past its block")
        kind, length = packet[at], packet[at + 1]
        if length < OPT_MIN_SIZE or at + length > end:
            raise MalformedPacket(f"option length {length} does not fit")
        options.setdefault(kind & OPT_TYPE_MASK, packet[at + 2 : at + length])
        at += length
        if kind & OPT_END:
            return options, end
    raise MalformedPacket(f"more than {OPTIONS_MAX} options")


def _options_block(options: list[tuple[int, bytes]]) -> bytes:
    """OPT_LENGTH then `options` (type, bytes after type and length), the last marked END."""
    parts = []
    for i, (kind, value) in enumerate(options):
        last = i == len(options) - 1
        parts.append(bytes([kind | (OPT_END if last else 0), 2 + len(value)]) + value)
    body = b"".join(parts)
    return struct.pack("!BBH", OPT_LENGTH, OPT_LENGTH_SIZE, OPT_LENGTH_SIZE + len(body)) + body


# -- parse ---------------------------------------------------------------------------------------


def parse(packet: bytes) -> Packet:
    """One PGM packet (starting at its PGM header); MalformedPacket if it is not one."""
    if len(packet) < HEADER_SIZE:
        raise MalformedPacket(f"{len(packet)} bytes is shorter than a PGM header")
    sport, dport, kind, flags, carried, gsi, tsdu_length = HEADER.unpack_from(packet)
    if carried:
        if not _checksum_ok(packet, carried):
            raise MalformedPacket("checksum mismatch")
    elif kind in (ODATA, RDATA):
        raise MalformedPacket("data packet without a checksum")
    has_options = bool(flags & FLAG_OPT_PRESENT)
    if kind in (ODATA, RDATA):
        return _parse_data(packet, kind, sport, dport, gsi, tsdu_length, has_options)
    if kind == SPM:
        return _parse_spm(packet, sport, dport, gsi, has_options)
    if kind in (NAK, NCF, NNAK):
        return _parse_nak(packet, kind, sport, dport, gsi, has_options)
    if kind == SPMR:
        return Spmr(gsi, source_port=dport, data_port=sport)
    if kind in (POLL, POLR, ACK):
        return Unsupported(kind)
    raise MalformedPacket(f"unknown PGM type {kind:#x}")


def _parse_data(
    packet: bytes, kind: int, sport: int, dport: int, gsi: bytes, tsdu_length: int, opts: bool
) -> Data:
    start = HEADER_SIZE + DATA_HEADER.size
    if len(packet) < start:
        raise MalformedPacket("truncated data header")
    sqn, trail = DATA_HEADER.unpack_from(packet, HEADER_SIZE)
    fragment = None
    if opts:
        options, start = _read_options(packet, start)
        raw = options.get(OPT_FRAGMENT)
        if raw is not None:
            if len(raw) != OPT_FRAGMENT_SIZE - 2:
                raise MalformedPacket("OPT_FRAGMENT has the wrong length")
            fragment = struct.unpack_from("!III", raw, 2)
    if len(packet) - start != tsdu_length:
        raise MalformedPacket(f"TSDU length {tsdu_length} but {len(packet) - start} bytes")
    return Data(gsi, sport, dport, sqn, trail, packet[start:], kind == RDATA, fragment)


def _parse_spm(packet: bytes, sport: int, dport: int, gsi: bytes, opts: bool) -> Spm:
    if len(packet) < HEADER_SIZE + SPM_FIXED.size:
        raise MalformedPacket("truncated SPM")
    spm_sqn, trail, lead = SPM_FIXED.unpack_from(packet, HEADER_SIZE)
    nla, end = _read_nla(packet, HEADER_SIZE + SPM_FIXED.size)
    fin = False
    if opts:
        options, _ = _read_options(packet, end)
        fin = OPT_FIN in options
    return Spm(gsi, sport, dport, spm_sqn, trail, lead, nla, fin)


def _parse_nak(packet: bytes, kind: int, sport: int, dport: int, gsi: bytes, opts: bool) -> Nak:
    if len(packet) < HEADER_SIZE + NAK_SQN.size:
        raise MalformedPacket("truncated NAK")
    (first,) = NAK_SQN.unpack_from(packet, HEADER_SIZE)
    source_nla, at = _read_nla(packet, HEADER_SIZE + NAK_SQN.size)
    group_nla, at = _read_nla(packet, at)
    sqns: tuple[int, ...] = (first,)
    if opts:
        options, _ = _read_options(packet, at)
        raw = options.get(OPT_NAK_LIST)
        if raw is not None:
            listed = raw[2:]  # after the flags byte and the reserved byte
            if len(listed) % 4 or len(listed) // 4 > NAK_LIST_MAX:
                raise MalformedPacket("OPT_NAK_LIST has a bad length")
            sqns += struct.unpack(f"!{len(listed) // 4}I", listed)
    if kind == NCF:  # sent by the source: its port is the header's source port
        return Nak(kind, gsi, sport, dport, sqns, source_nla, group_nla)
    return Nak(kind, gsi, dport, sport, sqns, source_nla, group_nla)


# -- build ---------------------------------------------------------------------------------------


def _header(sport: int, dport: int, kind: int, flags: int, gsi: bytes, tsdu_length: int) -> bytes:
    return HEADER.pack(sport, dport, kind, flags, 0, gsi, tsdu_length)


def build_spm(
    gsi: bytes,
    sport: int,
    dport: int,
    spm_sqn: int,
    trail: int,
    lead: int,
    nla: str,
    fin: bool = False,
) -> bytes:
    """An SPM for source (gsi, sport); with OPT_FIN when the source is closing."""
    body = SPM_FIXED.pack(spm_sqn, trail, lead) + _nla_bytes(nla)
    flags = 0
    if fin:
        body += _options_block([(OPT_FIN, b"\0\0")])
        flags = FLAG_OPT_PRESENT
    return _with_checksum(bytearray(_header(sport, dport, SPM, flags, gsi, 0) + body))


def build_data(
    gsi: bytes,
    sport: int,
    dport: int,
    sqn: int,
    trail: int,
    payload: bytes,
    repair: bool = False,
) -> bytes:
    """An ODATA (or, with `repair`, RDATA) packet carrying one whole APDU."""
    kind = RDATA if repair else ODATA
    head = _header(sport, dport, kind, 0, gsi, len(payload)) + DATA_HEADER.pack(sqn, trail)
    return _with_checksum(bytearray(head + payload))


def build_nak(
    kind: int,
    gsi: bytes,
    source_port: int,
    data_port: int,
    sqns: tuple[int, ...] | list[int],
    source_nla: str,
    group_nla: str,
) -> bytes:
    """A NAK (or NCF, N-NAK) for up to `NAK_SQNS_MAX` sequences of source (gsi, source_port)."""
    if not 0 < len(sqns) <= NAK_SQNS_MAX:
        raise ValueError(f"a NAK names 1 to {NAK_SQNS_MAX} sequences, not {len(sqns)}")
    body = NAK_SQN.pack(sqns[0]) + _nla_bytes(source_nla) + _nla_bytes(group_nla)
    flags = 0
    if len(sqns) > 1:
        listed = struct.pack(f"!{len(sqns) - 1}I", *sqns[1:])
        body += _options_block([(OPT_NAK_LIST, b"\0\0" + listed)])
        flags = FLAG_OPT_PRESENT | FLAG_OPT_NETWORK
    if kind == NCF:  # from the source
        sport, dport = source_port, data_port
    else:  # to the source: ports swap
        sport, dport = data_port, source_port
    return _with_checksum(bytearray(_header(sport, dport, kind, flags, gsi, 0) + body))


def build_spmr(gsi: bytes, source_port: int, data_port: int) -> bytes:
    """An SPM request to source (gsi, source_port)."""
    return _with_checksum(bytearray(_header(data_port, source_port, SPMR, 0, gsi, 0)))


# -- raw IP (the pgm:// transport reads whole IPv4 packets) ------------------------------------

IPV4_MIN_HEADER = 20


def strip_ipv4(datagram: bytes) -> tuple[str, str, bytes]:
    """(source, destination, PGM packet) of an IPv4 packet read from a raw protocol-113 socket;
    MalformedPacket unless it is an unfragmented IPv4 packet carrying PGM."""
    if len(datagram) < IPV4_MIN_HEADER:
        raise MalformedPacket("shorter than an IPv4 header")
    version, ihl = datagram[0] >> 4, (datagram[0] & 0x0F) * 4
    if version != 4 or ihl < IPV4_MIN_HEADER or len(datagram) < ihl:
        raise MalformedPacket("not an IPv4 header")
    (fragment,) = struct.unpack_from("!H", datagram, 6)
    if fragment & 0x3FFF:  # more-fragments or an offset: the kernel reassembles for raw sockets
        raise MalformedPacket("IP fragment")
    if datagram[9] != IPPROTO_PGM:
        raise MalformedPacket(f"IP protocol {datagram[9]} is not PGM")
    source = str(ipaddress.IPv4Address(datagram[12:16]))
    destination = str(ipaddress.IPv4Address(datagram[16:20]))
    return source, destination, datagram[ihl:]
