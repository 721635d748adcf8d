"""The floor row's relay (loadtest/bench_floor.py): real processes, real loopback TCP."""

from __future__ import annotations

import pytest
from prockit import alive

from loadtest.bench_floor import FloorRelay


def test_every_message_comes_back_through_the_front_and_its_workers() -> None:
    relay = FloorRelay(workers=3)
    pids = [process.pid for process, _ in relay.children]
    try:
        assert all(pid is not None and alive(pid) for pid in pids)
        measured = relay.paced(rate=200, seconds=0.25)
        assert measured.messages == 50 == len(measured.latencies_ms)
        assert all(ms > 0 for ms in measured.latencies_ms)
        # Paced, not flat out: 50 messages at 200/s take about 0.25 s.
        assert measured.seconds >= 0.2
        assert set(measured.cpu) == {"front", "w1", "w2", "w3"}
        assert all(seconds >= 0 for seconds in measured.cpu.values())
    finally:
        relay.stop()
    assert not any(alive(pid) for pid in pids if pid is not None)  # killed by PID, reaped


def test_messages_one_at_a_time_keep_to_one_worker_as_the_front_does() -> None:
    """Warm dispatch, as the game's front: each message travels alone, so the worker that
    answered last owes nothing and takes the next; the other two never wake (no CPU)."""
    relay = FloorRelay(workers=3)
    try:
        # Back to back, 10,000 of them: the hot worker's CPU is well over the 10 ms /proc/PID/stat
        # counts in (1,000 once took it less, and it read 0).
        measured = relay.paced(rate=100_000, seconds=0.1)
        workers = sorted(measured.cpu[name] for name in ("w1", "w2", "w3"))
        assert workers[:2] == [0.0, 0.0] and workers[2] > 0.0
    finally:
        relay.stop()


def test_a_front_that_stops_answering_is_an_error_not_a_hang() -> None:
    relay = FloorRelay(workers=1)
    try:
        front, _ = relay.children[0]
        front.kill()
        front.join(5)
        with pytest.raises((RuntimeError, OSError)):
            relay.exchange()
    finally:
        relay.stop()
