"""The sync face's wake-up signal (an eventfd) is set from other threads than the one that
closes it. Closing must wait for a set() under way: otherwise the write lands on whatever file
took the freed number next, which in a process that also runs libzmq is one of its mailbox
eventfds (libzmq aborts on a signal with no command behind it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.iothread import Signal

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Run in a child process of its own: the check needs the kernel's rule that a new file gets
#: the lowest free number, and in a test worker other threads open and close files meanwhile.
#: The set() under way holds on inside its write for HOLD_S, waiting for a close that must not
#: get through meanwhile; then the closer opens a file, which takes the freed number.
CHECK = """
import os, threading
from engine import iothread
from engine.iothread import Signal

HOLD_S = 0.2
signal = Signal()
number = signal.fd
writing, closed_and_reused = threading.Event(), threading.Event()
real_write = os.eventfd_write

def write_later(fd, value):
    writing.set()
    closed_and_reused.wait(HOLD_S)
    real_write(fd, value)

iothread.os.eventfd_write = write_later
setter = threading.Thread(target=signal.set)
setter.start()
assert writing.wait(10)
taken = []

def close_and_take_the_number():
    signal.close()
    taken.append(os.eventfd(0, os.EFD_NONBLOCK))  # another library opens a file
    closed_and_reused.set()

closer = threading.Thread(target=close_and_take_the_number)
closer.start()
setter.join(10)
closer.join(10)
assert taken == [number], (taken, number)
try:
    os.eventfd_read(number)
except BlockingIOError:
    print("ok")  # the set() wrote to its own eventfd, not to the file that took the number
else:
    print("the set() wrote to a file that took the closed signal's number")
"""


def test_close_waits_for_a_set_under_way() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_set_and_clear_after_close_do_nothing() -> None:
    signal = Signal()
    signal.close()
    signal.set()
    signal.clear()
    signal.close()
    assert signal.fd == -1
