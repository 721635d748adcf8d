"""The PGM source and receiver state machines on a simulated LAN: repair, gaps, timers, limits."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pgmsim import GSI, NLA, SOURCE_PORT, Lan, any_data, odata, receiver_config, sender_config

from engine.pgm import packets as wire
from engine.pgm.receiver import MessageReceived, PgmReceiver
from engine.pgm.sender import PgmSender, max_apdu, window_sqns

FUZZ_EXAMPLES = 200


#: A body that makes ["topic", body] fill one APDU exactly (1448 - 2 offset bytes, less the
#: frames' headers: 2 + 5 for "topic", 10 for a long frame), so message i is sequence i.
ONE_APDU_BODY = max_apdu(1500, 28) - 2 - 7 - 10


def numbered(n: int) -> list[list[bytes]]:
    """n messages, one per APDU: message i is exactly the data of sequence i."""
    return [[b"topic", str(i).encode().ljust(ONE_APDU_BODY, b".")] for i in range(n)]


def test_no_loss_all_in_order_with_spms() -> None:
    lan = Lan.build()
    msgs = numbered(20)
    lan.send(*msgs)
    lan.run(lambda: len(lan.messages()) == 20)
    assert lan.messages() == msgs
    assert len(lan.sent(wire.Spm)) == 3  # announced at start
    lan.run(lan.now + 1.0)
    assert len(lan.sent(wire.Spm)) > 3  # heartbeats after data
    assert lan.receivers[0].stats.naks_sent == 0


def test_lost_odata_is_nakked_confirmed_and_repaired() -> None:
    lan = Lan.build(drop=odata({3, 4, 9}))
    msgs = numbered(15)
    lan.send(*msgs)
    lan.run(lambda: len(lan.messages()) == 15)
    assert lan.messages() == msgs and lan.gaps() == []
    rx, tx = lan.receivers[0].stats, lan.sender.stats
    assert rx.repaired == 3 and tx.rdata == 3 and tx.ncf >= 1
    assert lan.sent(wire.Nak, "up")  # NAKs went to the source's address
    first_nak = min(lan.sent(wire.Nak, "up"))
    assert first_nak <= 0.05 + 0.01  # within the back-off interval of the hole showing


def test_lost_nak_is_repeated() -> None:
    lost = {"naks": 0}

    def drop(direction: str, i: int, p: wire.Packet) -> bool:
        if isinstance(p, wire.Data) and not p.repair and p.sqn == 2:
            return True
        if direction == "up" and isinstance(p, wire.Nak) and lost["naks"] < 2:
            lost["naks"] += 1
            return True
        return False

    lan = Lan.build(drop=drop)
    lan.send(*numbered(5))
    lan.run(lambda: len(lan.messages()) == 5)
    naks = lan.sent(wire.Nak, "up")
    assert len(naks) == 3
    assert naks[1] - naks[0] >= 0.2  # waited the NCF interval before asking again


def test_lost_rdata_is_asked_for_again() -> None:
    repairs = {"lost": 0}

    def drop(direction: str, i: int, p: wire.Packet) -> bool:
        if isinstance(p, wire.Data) and p.sqn == 1:
            if not p.repair:
                return True
            if repairs["lost"] < 2:
                repairs["lost"] += 1
                return True
        return False

    lan = Lan.build(drop=drop)
    msgs = numbered(4)
    lan.send(*msgs)
    lan.run(lambda: len(lan.messages()) == 4)
    assert lan.messages() == msgs
    assert lan.sender.stats.rdata == 3


def test_ncf_suppresses_the_nak() -> None:
    """A receiver that hears another's NCF while backing off does not NAK itself."""
    lan = Lan.build(drop=odata({2}))
    msgs = numbered(4)
    lan.send(*msgs)
    rx = lan.receivers[0]
    lan.run(lambda: rx.stats.data == 3)  # ODATA 0, 1, 3 arrived; 2 is missing, backing off
    assert rx.stats.naks_sent == 0
    ncf = wire.build_nak(wire.NCF, GSI, SOURCE_PORT, 5555, (2,), NLA, "239.192.1.1")
    rx.packet_received(ncf, NLA, lan.now)
    lan.run(lan.now + 0.15)  # past the back-off: still no NAK, it waits for the RDATA
    assert rx.stats.naks_sent == 0
    lan.run(lambda: len(lan.messages()) == 4)  # after the RDATA wait, it asks after all
    assert lan.messages() == msgs


def test_unrepairable_loss_is_a_gap_never_corrupt_data() -> None:
    """The source's window has moved past the lost packet: the receiver reports a gap, drops
    the message that packet was part of, and goes on with the next whole message."""
    lan = Lan.build(sender=sender_config(window_sqns=4), drop=any_data({5}))
    msgs = [[b"m", bytes([i]) * 2500] for i in range(10)]  # each spans two or three APDUs
    lan.send(*msgs)
    lan.run(lambda: lan.gaps() != [] and lan.sender.pending_bytes == 0)
    lan.run(lan.now + 1.0)
    got = lan.messages()
    assert lan.gaps() == [1]
    assert len(got) < len(msgs)
    it = iter(msgs)
    assert all(any(m == sent for sent in it) for m in got)  # whole messages, in order
    assert got[-1] == msgs[-1]  # and it resynchronised
    assert lan.receivers[0].stats.lost == 1


def test_gap_after_the_recovery_interval() -> None:
    """Repairs never arrive and the source keeps its data: given up after RECOVERY_IVL."""
    lan = Lan.build(receiver=receiver_config(recovery_ivl=2.0), drop=any_data({1}))
    msgs = numbered(4)
    lan.send(*msgs)
    lan.run(lambda: lan.gaps() != [])
    assert 2.0 <= lan.now <= 2.2
    assert lan.messages() == [msgs[0], msgs[2], msgs[3]]


def test_receiver_behind_by_a_window_gives_up_the_oldest() -> None:
    lan = Lan.build(receiver=receiver_config(window_sqns=4), drop=any_data({1, 2}))
    msgs = numbered(10)
    lan.send(*msgs)
    lan.run(lambda: len(lan.messages()) == 8)
    assert sum(lan.gaps()) == 2  # each given up when the window had to move past it
    assert lan.messages() == [msgs[0], *msgs[3:]]
    assert lan.now < 0.05  # no waiting: the window could not hold them


def test_sequence_numbers_wrap() -> None:
    lan = Lan.build(sender=sender_config(initial_sqn=0xFFFFFFFD), drop=odata({0xFFFFFFFE, 1}))
    msgs = numbered(8)
    lan.send(*msgs)
    lan.run(lambda: len(lan.messages()) == 8)
    assert lan.messages() == msgs and lan.receivers[0].stats.repaired == 2


def test_spm_request_when_data_comes_without_spm() -> None:
    def drop(direction: str, i: int, p: wire.Packet) -> bool:
        return direction == "down" and isinstance(p, wire.Spm) and p.spm_sqn < 3

    lan = Lan.build(drop=drop)
    lan.send(*numbered(2))
    lan.run(lambda: lan.receivers[0].stats.spmrs_sent == 1)
    assert lan.now == pytest.approx(0.025)
    lan.run(lan.now + 0.001)
    assert lan.sender.stats.spm == 4  # answered at once


def test_late_joiner_starts_at_the_present() -> None:
    lan = Lan.build()
    msgs = numbered(6)
    lan.send(*msgs[:3])
    lan.run(lambda: len(lan.messages()) == 3)
    late = PgmReceiver(receiver_config(), random.Random(1))
    lan.receivers.append(late)
    lan.events.append([])
    lan.send(*msgs[3:])
    lan.run(lambda: len(lan.messages(1)) == 3)
    assert lan.messages(1) == msgs[3:] and late.stats.naks_sent == 0


def test_rate_limit_paces_data() -> None:
    rate = 100_000.0  # bytes per second
    lan = Lan.build(sender=sender_config(rate=rate))
    msgs = numbered(50)  # 50 packets of 1500 bytes on the wire
    lan.send(*msgs)
    lan.run(lambda: len(lan.messages()) == 50)
    wire_bytes = 50 * 1500
    assert lan.now == pytest.approx(wire_bytes / rate, rel=0.1)


def test_source_ignores_naks_not_for_it() -> None:
    tx = PgmSender(sender_config(), 0.0)
    tx.send([b"x"])
    tx.handle_timer(0.0)
    tx.datagrams()
    good = dict(
        gsi=GSI,
        source_port=SOURCE_PORT,
        data_port=5555,
        sqns=(0,),
        source_nla=NLA,
        group_nla="239.192.1.1",
    )
    for change in (
        {"gsi": b"zzzzzz"},
        {"source_port": 1},
        {"data_port": 1},
        {"source_nla": "192.0.2.9"},
        {"group_nla": "239.0.0.9"},
    ):
        fields = good | change
        tx.packet_received(wire.build_nak(wire.NAK, **fields), 0.0)  # type: ignore[arg-type]
    assert tx.stats.naks == 0 and tx.stats.dropped == 5
    tx.packet_received(wire.build_nak(wire.NAK, **good), 0.0)  # type: ignore[arg-type]
    assert tx.stats.naks == 1 and tx.stats.ncf == 1
    tx.packet_received(b"garbage", 0.0)
    assert tx.stats.dropped == 6


def test_close_announces_fin() -> None:
    tx = PgmSender(sender_config(), 0.0)
    tx.datagrams()
    tx.close()
    spms = [wire.parse(p) for p in tx.datagrams()]
    assert len(spms) == 3 and all(isinstance(s, wire.Spm) and s.fin for s in spms)
    with pytest.raises(RuntimeError):
        tx.send([b"late"])


def test_sources_are_capped_and_expire() -> None:
    rx = PgmReceiver(receiver_config(max_sources=2, peer_expiry=5.0))
    for n in range(3):
        gsi = bytes([n]) * 6
        rx.packet_received(wire.build_spm(gsi, 1000 + n, 5555, 0, 0, 0xFFFFFFFF, NLA), NLA, 0.0)
    assert rx.sources == 2 and rx.stats.refused == 1
    rx.handle_timer(6.0)
    assert rx.sources == 0


def test_sizes_follow_libzmq() -> None:
    assert max_apdu(1500, 20) == 1456  # pgm: IP header only
    assert max_apdu(1500, 28) == 1448  # epgm: IP and UDP
    assert window_sqns(100, 10000, 1500) == 80  # libzmq's defaults
    assert window_sqns(1, 1, 1500) == 1


# -- fuzz ------------------------------------------------------------------------------------


def checksummed(raw: bytes) -> bytes:
    if len(raw) < wire.HEADER_SIZE:
        return raw
    packet = bytearray(raw)
    packet[6:8] = b"\0\0"
    struct.pack_into("!H", packet, 6, wire.checksum(packet))
    return bytes(packet)


def plausible_packet() -> st.SearchStrategy[bytes]:
    """Well-formed packets with hostile numbers: any sequence, trail, lead, NAK list."""
    u32 = st.integers(0, 0xFFFFFFFF)
    gsi = st.sampled_from([GSI, b"\x09" * 6])
    ports = st.sampled_from([(SOURCE_PORT, 5555), (SOURCE_PORT, 7), (6000, 5555)])
    data = st.builds(
        lambda g, p, s, t, b, r: wire.build_data(g, p[0], p[1], s, t, b, r),
        gsi,
        ports,
        u32,
        u32,
        st.binary(max_size=40),
        st.booleans(),
    )
    spm = st.builds(
        lambda g, p, q, t, lead: wire.build_spm(g, p[0], p[1], q, t, lead, NLA),
        gsi,
        ports,
        u32,
        u32,
        u32,
    )
    nak = st.builds(
        lambda k, g, p, s: wire.build_nak(k, g, p[0], p[1], s, NLA, "239.192.1.1"),
        st.sampled_from([wire.NAK, wire.NCF]),
        gsi,
        ports,
        st.lists(u32, min_size=1, max_size=wire.NAK_SQNS_MAX),
    )
    junk = st.binary(max_size=80).map(checksummed)
    return st.one_of(data, spm, nak, junk)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.lists(st.tuples(plausible_packet(), st.floats(0, 2)), max_size=30))
def test_fuzz_receiver_never_raises(packets: list[tuple[bytes, float]]) -> None:
    rx = PgmReceiver(receiver_config(window_sqns=50, recovery_ivl=1.0, max_message_size=4096))
    now = 0.0
    for packet, later in packets:
        now += later
        rx.packet_received(packet, NLA, now)
        rx.handle_timer(now)
        due = rx.next_timer()
        if due is not None:
            rx.handle_timer(max(now, due))
        for event in rx.events():
            if isinstance(event, MessageReceived):
                assert sum(map(len, event.frames)) <= 4096
        assert len(rx.datagrams()) < 10_000
    for source in rx._sources.values():  # the window never outgrows its bound
        assert len(source.slots) <= 50


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.lists(st.tuples(plausible_packet(), st.floats(0, 2)), max_size=30))
def test_fuzz_sender_never_raises(packets: list[tuple[bytes, float]]) -> None:
    tx = PgmSender(sender_config(window_sqns=20), 0.0)
    now = 0.0
    for i, (packet, later) in enumerate(packets):
        now += later
        tx.send([b"m", bytes([i]) * 100])
        tx.packet_received(packet, now)
        tx.handle_timer(now)
        tx.datagrams()
        assert tx.next_timer(now) is not None
