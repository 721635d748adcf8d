"""The batched CURVE sealing and opening paths give the same wire bytes as frame-by-frame."""

from __future__ import annotations

import pytest

pytest.importorskip("nacl")

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
