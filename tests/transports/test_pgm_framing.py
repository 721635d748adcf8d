"""libzmq's framing inside PGM data: offsets, ZMTP/1.0 frames, resynchronising after loss."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.pgm.framing import (
    NO_MESSAGE_START,
    ApduReader,
    ApduWriter,
    encode_message,
    pack_apdus,
)

FUZZ_EXAMPLES = 500
BIG = 1 << 20


def offsets(apdus: list[bytes]) -> list[int]:
    return [int.from_bytes(a[:2], "big") for a in apdus]


def test_libzmq_bytes() -> None:
    # What libzmq's PUB put in its first ODATA for the message ["t", "m0"] (see test_pgm_packets).
    assert pack_apdus([[b"t", b"m0"]], 1448) == [b"\x00\x00\x02\x01t\x03\x00m0"]


def test_frame_length_forms() -> None:
    assert encode_message([b"x" * 253])[:2] == bytes((254, 0))  # length counts the flags byte
    long = encode_message([b"x" * 254])
    assert long[:10] == b"\xff" + (255).to_bytes(8, "big") + b"\x00"
    assert encode_message([b"a", b"b", b""]) == b"\x02\x01a\x02\x01b\x01\x00"


def test_offsets_mark_message_starts_only() -> None:
    # 3 bytes of room per APDU: one frame each. "b" starts the second APDU, but it is the
    # second frame of ["a", "b"], not a message: that APDU says no message starts in it.
    apdus = pack_apdus([[b"a", b"b"], [b"c"]], 5)
    assert [a[2:] for a in apdus] == [b"\x02\x01a", b"\x02\x00b", b"\x02\x00c"]
    assert offsets(apdus) == [0, NO_MESSAGE_START, 0]
    # A message starting inside an APDU: its offset points there.
    assert offsets(pack_apdus([[b"a", b"b"], [b"c"]], 6)) == [0, 2, NO_MESSAGE_START]


def test_large_message_spans_apdus() -> None:
    message = [b"topic", bytes(range(256)) * 20]
    apdus = pack_apdus([message, [b"after"]], 1448)
    assert len(apdus) == 4
    assert offsets(apdus)[:3] == [0, NO_MESSAGE_START, NO_MESSAGE_START]
    reader = ApduReader(BIG)
    out = [m for a in apdus for m in reader.feed(a)]
    assert out == [message, [b"after"]]


def test_writer_cuts_as_it_goes() -> None:
    writer = ApduWriter(10)
    writer.write([b"hello"])
    assert (writer.pending, writer.next_size()) == (7, 9)
    assert writer.cut() == b"\x00\x00\x06\x00hello"
    assert (writer.pending, writer.next_size()) == (0, 0)
    writer.write([b"0123456789"])
    writer.write([b"z"])
    assert offsets([writer.cut(), writer.cut()]) == [0, 4]  # "z" starts 4 bytes into the second


def test_late_join_skips_to_a_message_start() -> None:
    apdus = pack_apdus([[b"x" * 3000], [b"second"], [b"third"]], 1000)
    reader = ApduReader(BIG)
    out = [m for a in apdus[1:] for m in reader.feed(a)]  # missed the first APDU
    assert out == [[b"second"], [b"third"]]
    assert reader.skipped >= 1


def test_loss_drops_the_partial_message_and_resyncs() -> None:
    messages = [[bytes([i]) * 700] for i in range(6)]
    apdus = pack_apdus(messages, 1000)
    reader = ApduReader(BIG)
    out: list[list[bytes]] = []
    for i, apdu in enumerate(apdus):
        if i == 2:
            reader.lost()  # apdu 2 never came
            continue
        out += reader.feed(apdu)
    assert out and all(m in messages for m in out)
    assert out == sorted(out, key=messages.index)  # in order, none invented
    assert len(out) < len(messages)


def test_bad_framing_is_counted_not_raised() -> None:
    reader = ApduReader(100)
    assert reader.feed(b"\x00\x00\x00") == []  # a frame of length 0
    assert (reader.malformed, reader.joined) == (1, False)
    assert reader.feed(b"\x00\x00\xff" + (500).to_bytes(8, "big")) == []  # over the cap
    assert reader.malformed == 2
    assert reader.feed(b"\x00\x09\x02\x00a") == []  # offset past the end
    assert reader.feed(b"\x01") == []  # shorter than an offset
    assert reader.malformed == 4
    assert reader.feed(b"\x00\x00\x02\x00a") == [[b"a"]]  # and it recovers


def test_message_cap_counts_all_frames() -> None:
    reader = ApduReader(10)
    assert reader.feed(pack_apdus([[b"12345", b"67890"]], 100)[0]) == [[b"12345", b"67890"]]
    assert reader.feed(pack_apdus([[b"123456", b"67890"]], 100)[0]) == []
    assert reader.malformed == 1


def test_apdu_needs_room() -> None:
    with pytest.raises(ValueError):
        ApduWriter(2)


message_lists = st.lists(
    st.lists(st.binary(max_size=600), min_size=1, max_size=3), min_size=1, max_size=12
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(message_lists, st.integers(3, 1500), st.sets(st.integers(0, 60), max_size=5))
def test_fuzz_delivers_a_subsequence_never_corrupt(messages, apdu_max, lost) -> None:
    """Whatever APDUs go missing, what comes out is some of the messages, whole and in order."""
    apdus = pack_apdus(messages, apdu_max)
    assert all(len(a) <= apdu_max for a in apdus)
    reader = ApduReader(BIG)
    out: list[list[bytes]] = []
    for i, apdu in enumerate(apdus):
        if i in lost:
            reader.lost()
        else:
            out += reader.feed(apdu)
    it = iter(messages)
    assert all(any(m == sent for sent in it) for m in out)  # a subsequence
    if not lost & set(range(len(apdus))):
        assert out == messages


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.integers(1, 5000))
def test_fuzz_random_apdus_never_raise(apdus: list[bytes], cap: int) -> None:
    reader = ApduReader(cap)
    for apdu in apdus:
        for message in reader.feed(apdu):
            assert sum(map(len, message)) <= cap
