"""The batched CURVE sealing and opening paths give the same wire bytes as frame-by-frame."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("nacl")

from engine.constants import ProtocolErrorCode
from engine.security.commands import ProtocolError
from engine.security.curve_message import CurveCipher

KEY = bytes(range(32))


@pytest.mark.parametrize("size", [0, 1, 16, 222, 223, 224, 1024, 70000])
@pytest.mark.parametrize("start", [0, 250, 2**32 - 3])
def test_uniform_batch_matches_frame_by_frame(size: int, start: int) -> None:
    batch = CurveCipher(KEY, as_server=False, sent=start, received=0)
    single = CurveCipher(KEY, as_server=False, sent=start, received=0)
    msgs = [[bytes([i % 256]) * size] for i in range(300)]
    wire = bytes(batch.seal_messages(msgs, False))
    assert wire == b"".join(bytes(single.seal_messages([m], False)) for m in msgs)
    server = CurveCipher(KEY, as_server=True, sent=0, received=start)
    payloads, flags, pos, _need = server.open_run(wire, 0, 1000, 1 << 20)
    assert [[p] for p in payloads] == msgs
    assert flags == bytes(300)
    assert pos == len(wire)


def test_open_batch_stops_at_a_forged_box() -> None:
    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    wire = bytearray(client.seal_messages([[b"abc"]] * 10, False))
    wire[-1] ^= 1  # the last frame's ciphertext
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    with pytest.raises(ProtocolError):
        server.open_run(bytes(wire), 0, 1000, 1 << 20)


def test_open_batch_refuses_a_replay() -> None:
    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    wire = bytes(client.seal_messages([[b"abc"]] * 5, False))
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    server.open_run(wire, 0, 1000, 1 << 20)
    with pytest.raises(ProtocolError):
        server.open_run(wire, 0, 1000, 1 << 20)


def test_open_batch_after_a_partial_frame_and_mixed_sizes() -> None:
    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    msgs = [[b"a" * 10]] * 50 + [[b"b" * 300]] * 20 + [[b"c" * 10]] * 30
    wire = b"".join(bytes(client.seal_messages([m], False)) for m in msgs)
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    got: list[bytes] = []
    pos = 0
    for cut in range(7, len(wire) + 1, 97):  # the data arrives in pieces
        payloads, _flags, pos, _need = server.open_run(wire[:cut], pos, 1000, 1 << 20)
        got += payloads
    payloads, _flags, pos, _need = server.open_run(wire, pos, 1000, 1 << 20)
    got += payloads
    assert [[p] for p in got] == msgs
    assert pos == len(wire)


def test_open_batch_multipart_and_commands() -> None:
    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    wire = bytes(client.seal_messages([[b"x", b"y", b"z"]] * 10, False))
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    payloads, flags, pos, _need = server.open_run(wire, 0, 1000, 1 << 20)
    assert payloads == [b"x", b"y", b"z"] * 10
    assert flags == bytes((1, 1, 0)) * 10
    assert pos == len(wire)


def test_open_batch_stops_at_max_frames() -> None:
    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    wire = bytes(client.seal_messages([[b"abc"]] * 10, False))
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    payloads, _flags, pos, _need = server.open_run(wire, 0, 4, 1 << 20)
    assert payloads == [b"abc"] * 4
    payloads, _flags, pos, _need = server.open_run(wire, pos, 100, 1 << 20)
    assert payloads == [b"abc"] * 6
    assert pos == len(wire)


def test_open_run_takes_a_memoryview() -> None:
    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    wire = bytes(client.seal_messages([[b"abc"]] * 10, False))
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    payloads, _flags, pos, _need = server.open_run(memoryview(wire), 0, 100, 1 << 20)
    assert payloads == [b"abc"] * 10
    assert pos == len(wire)


@pytest.mark.parametrize("offset", range(18))
def test_open_batch_refuses_a_changed_header_octet_mid_run(offset: int) -> None:
    # Frame header, [7]"MESSAGE" and short nonce of frame 5 of 20 (16-octet payloads: short
    # frames, 2 + 49 octets each): any change is refused, never opened as sent.
    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    wire = bytearray(client.seal_messages([[b"p" * 16]] * 20, False))
    wire[5 * 51 + offset] ^= 0x01
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    with pytest.raises(ProtocolError):
        server.open_run(bytes(wire), 0, 1000, 1 << 20)


def test_open_batch_forged_box_mid_run_is_a_cryptographic_error() -> None:
    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    wire = bytearray(client.seal_messages([[b"p" * 16]] * 300, False))
    wire[200 * 51 + 30] ^= 0x80  # inside frame 200's box
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    with pytest.raises(ProtocolError) as caught:
        server.open_run(bytes(wire), 0, 1000, 1 << 20)
    assert caught.value.value == ProtocolErrorCode.ZMTP_CRYPTOGRAPHIC


@pytest.mark.parametrize("count", [2, 127, 128, 129, 255, 256, 257, 700, 2000])
def test_batches_of_any_length_round_trip(count: int) -> None:
    # Runs that cross 256 nonces, lengths around the 128-frame cuts, and a batch larger than a
    # thread's workspace (2000 frames of 39 octets: sealed in its own buffer, opened in runs).
    client = CurveCipher(KEY, as_server=False, sent=200, received=0)
    msgs = [[i.to_bytes(4, "big")] for i in range(count)]
    wire = bytes(client.seal_messages(msgs, False))
    single = CurveCipher(KEY, as_server=False, sent=200, received=0)
    assert wire == b"".join(bytes(single.seal_messages([m], False)) for m in msgs)
    server = CurveCipher(KEY, as_server=True, sent=0, received=200)
    payloads, _flags, pos, _need = server.open_run(wire, 0, 10_000, 1 << 20)
    assert [[p] for p in payloads] == msgs
    assert pos == len(wire)


def test_threads_sealing_and_opening_at_once_keep_their_own_workspace() -> None:
    # Each thread seals and opens its own stream of batches; a workspace shared between them
    # would mix their frames, and the boxes would not open or the payloads would differ.
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def stream(mark: int) -> None:
        try:
            client = CurveCipher(KEY, as_server=False, sent=0, received=0)
            server = CurveCipher(KEY, as_server=True, sent=0, received=0)
            start.wait()
            for n in range(200):
                msgs = [[bytes([mark, n % 256]) * (8 + mark)] for _ in range(50 + mark)]
                wire = bytes(client.seal_messages(msgs, False))
                payloads, _flags, pos, _need = server.open_run(wire, 0, 10_000, 1 << 20)
                assert [[p] for p in payloads] == msgs
                assert pos == len(wire)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=stream, args=(mark,)) for mark in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def test_a_nested_seal_or_open_on_the_same_thread_leaves_the_workspace_alone() -> None:
    # What a finalizer run by the garbage collector in the middle of a batch could do: seal and
    # open another batch on the same thread. Both batches must still come out right.
    msgs = [[bytes([i]) * 16] for i in range(40)]
    expected = b"".join(
        bytes(CurveCipher(KEY, as_server=False, sent=i, received=0).seal_messages([m], False))
        for i, m in enumerate(msgs)
    )
    other = [[b"o" * 16]] * 30

    def nested() -> None:
        client = CurveCipher(KEY, as_server=False, sent=0, received=0)
        server = CurveCipher(KEY, as_server=True, sent=0, received=0)
        wire = bytes(client.seal_messages(other, False))
        assert server.open_run(wire, 0, 1000, 1 << 20)[0] == [b"o" * 16] * 30

    def once(box):  # the real libsodium call, after one nested batch on its first call
        state = {"done": False}

        def call(*args):
            if not state["done"]:
                state["done"] = True
                nested()
            return box(*args)

        return call

    client = CurveCipher(KEY, as_server=False, sent=0, received=0)
    client._seal_box = once(client._seal_box)
    wire = bytes(client.seal_messages(msgs, False))
    assert wire == expected
    server = CurveCipher(KEY, as_server=True, sent=0, received=0)
    server._open_box = once(server._open_box)
    payloads, _flags, pos, _need = server.open_run(wire, 0, 1000, 1 << 20)
    assert [[p] for p in payloads] == msgs
    assert pos == len(wire)


frame_lists = st.lists(
    st.one_of(st.binary(max_size=40), st.binary(min_size=200, max_size=300)), min_size=1, max_size=4
)


@settings(max_examples=300, deadline=None)
@given(first=frame_lists, second=frame_lists, start=st.sampled_from([0, 254, 255, 2**40 - 2]))
def test_one_message_path_matches_the_batch_path(
    first: list[bytes], second: list[bytes], start: int
) -> None:
    """A batch of one message takes its own short path (one frame: a shorter one still);
    its bytes are the batch loop's."""
    one = CurveCipher(KEY, as_server=False, sent=start, received=0)
    batch = CurveCipher(KEY, as_server=False, sent=start, received=0)
    wire = bytes(one.seal_messages([first], False)) + bytes(one.seal_messages([second], False))
    # Two messages of these shapes are never a uniform run: the general loop seals them.
    assert wire == bytes(batch.seal_messages([first, second, [b"u" * 7]], False))[: len(wire)]
    server = CurveCipher(KEY, as_server=True, sent=0, received=start)
    payloads, flags, pos, _need = server.open_run(wire, 0, 1000, 1 << 20)
    assert payloads == first + second
    assert pos == len(wire)
    more = [1] * (len(first) - 1) + [0] + [1] * (len(second) - 1) + [0]
    assert list(flags) == more


def test_one_message_path_refuses_exhausted_nonces() -> None:
    client = CurveCipher(KEY, as_server=False, sent=2**64 - 2, received=0)
    client.seal_messages([[b"last"]], False)
    with pytest.raises(ProtocolError):
        client.seal_messages([[b"one too many"]], False)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(
        st.lists(st.binary(max_size=300), min_size=1, max_size=4), min_size=1, max_size=6
    ),
    start=st.sampled_from([0, 255, 2**32 - 3]),
)
def test_seal_message_is_the_batch_of_one(messages: list[list[bytes]], start: int) -> None:
    """`seal_message` (a link's one-message write) gives the bytes `seal_messages` gives for
    a batch of that one message, and the receiver reads the messages back."""
    one = CurveCipher(KEY, as_server=False, sent=start, received=0)
    batch = CurveCipher(KEY, as_server=False, sent=start, received=0)
    wire = b""
    for message in messages:
        sealed = bytes(one.seal_message(message))
        assert sealed == bytes(batch.seal_messages([message], False))
        wire += sealed
    server = CurveCipher(KEY, as_server=True, sent=0, received=start)
    frames = sum(map(len, messages))
    payloads, flags, pos, _need = server.open_run(wire, 0, frames, 1 << 20)
    assert payloads == [frame for message in messages for frame in message]
    assert flags == bytes(int(i < len(m) - 1) for m in messages for i in range(len(m)))  # MORE
    assert pos == len(wire)
