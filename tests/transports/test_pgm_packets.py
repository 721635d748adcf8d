"""PGM packets against bytes OpenPGM really sent, plus the parser's refusals and a fuzzer.

The vectors were captured on a veth between libzmq 4.3.4/OpenPGM 5.3 peers (epgm, so each is a
UDP payload): the engine must parse each to the right fields and build it back byte for byte.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pgm import packets as wire

FUZZ_EXAMPLES = 1000
GSI = bytes.fromhex("b7c6d1bc038a")

# (what it is, hex as OpenPGM sent it)
OPENPGM = {
    "spm_at_start": "8a8d15b3000010afb7c6d1bc038a00000000000000000000ffffffff00010000c0000201",
    "odata": "8a8d15b304002837b7c6d1bc038a00090000000000000000000002017403006d30",
    "spm_fin": "8a8d15b300018293b7c6d1bc038a000000000008000000000000000200010000c0000201"
    "000400088e040000",
    "nak": "15b3b4390800ee3eb7c6d1bc038a00000000000100010000c000020100010000efc00101",
    "ncf": "b43915b30a00ec3eb7c6d1bc038a00000000000100010000c000020100010000efc00101",
    "rdata": "b43915b30500fc89b7c6d1bc038a00090000000100000000000002017403006d31",
}


def rebuild(packet: wire.Packet) -> bytes:
    if isinstance(packet, wire.Spm):
        return wire.build_spm(
            packet.gsi,
            packet.sport,
            packet.dport,
            packet.spm_sqn,
            packet.trail,
            packet.lead,
            packet.nla,
            packet.fin,
        )
    if isinstance(packet, wire.Data):
        return wire.build_data(
            packet.gsi,
            packet.sport,
            packet.dport,
            packet.sqn,
            packet.trail,
            packet.payload,
            packet.repair,
        )
    if isinstance(packet, wire.Nak):
        return wire.build_nak(
            packet.kind,
            packet.gsi,
            packet.source_port,
            packet.data_port,
            packet.sqns,
            packet.source_nla,
            packet.group_nla,
        )
    if isinstance(packet, wire.Spmr):
        return wire.build_spmr(packet.gsi, packet.source_port, packet.data_port)
    raise AssertionError(packet)


def test_openpgm_spm() -> None:
    spm = wire.parse(bytes.fromhex(OPENPGM["spm_at_start"]))
    # A new source: empty window (lead -1, trail 0), NAKs to 192.0.2.1.
    assert spm == wire.Spm(GSI, 0x8A8D, 5555, 0, 0, 0xFFFFFFFF, "192.0.2.1", False)
    fin = wire.parse(bytes.fromhex(OPENPGM["spm_fin"]))
    assert isinstance(fin, wire.Spm) and fin.fin and (fin.spm_sqn, fin.lead) == (8, 2)


def test_openpgm_data_carries_libzmq_framing() -> None:
    odata = wire.parse(bytes.fromhex(OPENPGM["odata"]))
    assert isinstance(odata, wire.Data) and not odata.repair
    assert (odata.sqn, odata.trail, odata.fragment) == (0, 0, None)
    # offset 0, then ZMTP/1.0 frames "t" (MORE) and "m0"
    assert odata.payload == b"\x00\x00" + b"\x02\x01t" + b"\x03\x00m0"
    rdata = wire.parse(bytes.fromhex(OPENPGM["rdata"]))
    assert isinstance(rdata, wire.Data) and rdata.repair and rdata.sqn == 1


def test_openpgm_nak_and_ncf() -> None:
    nak = wire.parse(bytes.fromhex(OPENPGM["nak"]))
    ncf = wire.parse(bytes.fromhex(OPENPGM["ncf"]))
    for packet, kind in ((nak, wire.NAK), (ncf, wire.NCF)):
        assert isinstance(packet, wire.Nak)
        assert (packet.kind, packet.gsi, packet.source_port, packet.data_port) == (
            kind,
            GSI,
            0xB439,
            5555,
        )
        assert (packet.sqns, packet.source_nla, packet.group_nla) == (
            (1,),
            "192.0.2.1",
            "239.192.1.1",
        )


@pytest.mark.parametrize("name", sorted(OPENPGM))
def test_builds_what_openpgm_sends_byte_for_byte(name: str) -> None:
    raw = bytes.fromhex(OPENPGM[name])
    assert rebuild(wire.parse(raw)) == raw


def test_nak_list_round_trip_and_limits() -> None:
    sqns = tuple(range(100, 100 + wire.NAK_SQNS_MAX))
    for kind in (wire.NAK, wire.NCF):
        raw = wire.build_nak(kind, GSI, 4000, 5555, sqns, "192.0.2.1", "239.1.2.3")
        parsed = wire.parse(raw)
        assert isinstance(parsed, wire.Nak) and parsed.sqns == sqns and parsed.kind == kind
    with pytest.raises(ValueError):
        wire.build_nak(wire.NAK, GSI, 4000, 5555, tuple(range(64)), "192.0.2.1", "239.1.2.3")
    with pytest.raises(ValueError):
        wire.build_nak(wire.NAK, GSI, 4000, 5555, (), "192.0.2.1", "239.1.2.3")


def test_spmr_round_trip() -> None:
    raw = wire.build_spmr(GSI, 4000, 5555)
    assert wire.parse(raw) == wire.Spmr(GSI, 4000, 5555)
    assert struct.unpack_from("!HH", raw) == (5555, 4000)  # upstream: ports swapped


def test_ipv6_nla_parses() -> None:
    raw = wire.build_spm(GSI, 1, 2, 3, 4, 5, "2001:db8::1")
    assert wire.parse(raw) == wire.Spm(GSI, 1, 2, 3, 4, 5, "2001:db8::1")


def test_checksum_follows_openpgm_fold() -> None:
    # An all-zero packet sums to 0; its complement 0xffff is what goes on the wire.
    assert wire.checksum(bytes(16)) == 0xFFFF
    # A packet summing to 0xffff keeps it (OpenPGM never sends 0, which means "none").
    assert wire.checksum(b"\xff\xff") == 0xFFFF
    assert wire.ones_complement_sum(b"\x12\x34\x56") == 0x1234 + 0x5600
    assert wire.ones_complement_sum(b"\xff\xff\x00\x01") == 0x0001  # end-around carry


def test_refusals() -> None:
    odata = bytearray(bytes.fromhex(OPENPGM["odata"]))
    cases = {
        "short": bytes(odata[:10]),
        "checksum": bytes(odata[:-1]) + b"\x00",
        "no checksum on data": bytes(odata[:6]) + b"\0\0" + bytes(odata[8:]),
    }
    for name, raw in cases.items():
        with pytest.raises(wire.MalformedPacket):
            wire.parse(raw)
            pytest.fail(name)
    # A wrong TSDU length, an unknown type, a bad option block: each with a valid checksum.
    assert_refused(bytes(odata), lambda p: struct.pack_into("!H", p, 14, 99))
    assert_refused(bytes(odata), lambda p: p.__setitem__(4, 0x03))
    spm = bytes.fromhex(OPENPGM["spm_fin"])
    assert_refused(spm, lambda p: p.__setitem__(36, 0x01))  # first option is not OPT_LENGTH
    assert_refused(spm, lambda p: struct.pack_into("!H", p, 38, 200))  # block past the end
    assert_refused(spm, lambda p: p.__setitem__(41, 0))  # option of length 0
    assert_refused(spm, lambda p: p.__setitem__(40, 0x0E))  # no OPT_END, runs off the block
    assert_refused(bytes.fromhex(OPENPGM["nak"]), lambda p: struct.pack_into("!H", p, 20, 7))


def assert_refused(raw: bytes, mutate: object) -> None:
    packet = bytearray(raw)
    mutate(packet)  # type: ignore[operator]
    with pytest.raises(wire.MalformedPacket):
        wire.parse(fix_checksum(bytes(packet)))


def fix_checksum(packet: bytes) -> bytes:
    if len(packet) < wire.HEADER_SIZE:
        return packet
    zeroed = bytearray(packet)
    zeroed[6:8] = b"\0\0"
    struct.pack_into("!H", zeroed, 6, wire.checksum(zeroed))
    return bytes(zeroed)


def test_strip_ipv4() -> None:
    pgm = bytes.fromhex(OPENPGM["odata"])
    header = bytearray(20)
    header[0], header[9] = 0x45, wire.IPPROTO_PGM
    header[12:16], header[16:20] = bytes([192, 0, 2, 1]), bytes([239, 192, 1, 1])
    assert wire.strip_ipv4(bytes(header) + pgm) == ("192.0.2.1", "239.192.1.1", pgm)
    options = bytearray(header)
    options[0] = 0x46  # a router alert option makes the header 24 bytes, as OpenPGM's NAKs do
    assert wire.strip_ipv4(bytes(options) + b"\x94\x04\x00\x00" + pgm)[2] == pgm
    with pytest.raises(wire.MalformedPacket):
        wire.strip_ipv4(bytes(header[:19]))  # shorter than a header
    for bad in (b"\x65" + header[1:], header[:9] + b"\x11" + header[10:]):  # IPv6, UDP
        with pytest.raises(wire.MalformedPacket):
            wire.strip_ipv4(bytes(bad) + pgm)
    fragment = bytearray(header)
    fragment[6] = 0x20  # more fragments
    with pytest.raises(wire.MalformedPacket):
        wire.strip_ipv4(bytes(fragment) + pgm)


# -- fuzz ------------------------------------------------------------------------------------

valid_packets = st.sampled_from([bytes.fromhex(h) for h in OPENPGM.values()])


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.binary(max_size=1600))
def test_fuzz_random_bytes(raw: bytes) -> None:
    """Random bytes, with and without a correct checksum: a packet, or MalformedPacket."""
    for candidate in (raw, fix_checksum(raw)):
        try:
            wire.parse(candidate)
        except wire.MalformedPacket:
            pass
    try:
        wire.strip_ipv4(raw)
    except wire.MalformedPacket:
        pass


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(
    valid_packets,
    st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(-8, 8),
)
def test_fuzz_mutated_openpgm_packets(raw: bytes, edits: list, resize: int) -> None:
    """Real packets with bytes changed and lengths cut or padded, checksum fixed after."""
    packet = bytearray(raw)
    for at, value in edits:
        if at < len(packet):
            packet[at] = value
    packet = packet[: len(packet) + resize] if resize < 0 else packet + bytes(resize)
    try:
        parsed = wire.parse(fix_checksum(bytes(packet)))
    except wire.MalformedPacket:
        return
    if not isinstance(parsed, wire.Unsupported):
        rebuild(parsed)  # whatever parses can be built again
