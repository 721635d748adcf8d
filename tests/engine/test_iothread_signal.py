"""The sync face's wake-up signal (an eventfd) is set from other threads than the one that
closes it. Closing must wait for a set() under way: otherwise the write lands on whatever file
took the freed number next, which in a process that also runs libzmq is one of its mailbox
eventfds (libzmq aborts on a signal with no command behind it)."""

from __future__ import annotations

import os
import threading

import pytest

from engine import iothread
from engine.iothread import Signal

#: How long the set() under way holds on, waiting for a close that must not happen meanwhile.
HOLD_S = 0.2


def test_close_waits_for_a_set_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    signal = Signal()
    number = signal.fd
    writing = threading.Event()
    closed_and_reused = threading.Event()
    real_write = os.eventfd_write

    def write_later(fd: int, value: int) -> None:
        writing.set()
        closed_and_reused.wait(HOLD_S)  # the close must not get through meanwhile
        real_write(fd, value)

    monkeypatch.setattr(iothread.os, "eventfd_write", write_later)
    setter = threading.Thread(target=signal.set)
    setter.start()
    assert writing.wait(10)
    taken: list[int] = []

    def close_and_take_the_number() -> None:
        signal.close()
        # Another library in the process opens a file: the lowest free number, the freed one.
        taken.append(os.eventfd(0, os.EFD_NONBLOCK))
        closed_and_reused.set()

    closer = threading.Thread(target=close_and_take_the_number)
    closer.start()
    setter.join(10)
    closer.join(10)
    other = taken[0]
    try:
        assert other == number, "another thread took the freed number first; nothing checked"
        with pytest.raises(BlockingIOError):
            os.eventfd_read(other)  # the set() wrote to its own eventfd, not to this one
    finally:
        os.close(other)
    assert signal.fd == -1


def test_set_and_clear_after_close_do_nothing() -> None:
    signal = Signal()
    signal.close()
    signal.set()
    signal.clear()
    signal.close()
    assert signal.fd == -1
