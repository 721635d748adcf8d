"""What a benchmark child counts for `crossroads bench --profile`: Python calls and wake-ups.

* Python calls: every Python function (or generator step) entered, in every thread of the
  process, counted by a profile hook. The hook must be in place before the I/O threads start,
  so `install` patches `_thread.start_new_thread` (the engine starts its I/O thread with it,
  even under gevent) and `threading`'s own start. The hook slows the code down several times,
  which can change how messages batch; the counts are a property of the code path, not a time.
* Wake-ups: the kernel's voluntary context switches of every thread of the process
  (`/proc/self/task/*/status`). A thread that blocks (in epoll, poll, or waiting for the GIL)
  and is woken again counts one. This works the same for pyzmq's libzmq threads.

Only the section between `start()` and `stop()` is counted.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

CALLS = "calls"
SWITCHES = "switches"


class Probe:
    """Counts Python calls (mode "calls") or voluntary context switches (mode "switches")."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._active = False
        self._cells: list[list[int]] = []
        self._switches_at_start: dict[str, int] = {}
        #: What the last start()/stop() section counted.
        self.counted: dict[str, int] = {}

    def install(self) -> None:
        """Call first thing in the process, before any socket (and I/O thread) exists."""
        if self.mode != CALLS:
            return
        self._hook_this_thread()
        original = _thread.start_new_thread

        def start_new_thread(fn: Callable[..., Any], args: tuple, kwargs: Any = None) -> int:
            def run(*a: Any, **kw: Any) -> Any:
                self._hook_this_thread()
                return fn(*a, **kw)

            return original(run, args, kwargs or {})

        _thread.start_new_thread = start_new_thread
        threading._start_new_thread = start_new_thread  # type: ignore[attr-defined]

    def _hook_this_thread(self) -> None:
        cell = [0]
        self._cells.append(cell)
        probe = self

        def count(frame: Any, event: str, arg: Any) -> None:
            if event == "call" and probe._active:
                cell[0] += 1

        sys.setprofile(count)

    def start(self) -> None:
        if self.mode == SWITCHES:
            self._switches_at_start = _voluntary_switches()
        for cell in self._cells:
            cell[0] = 0
        self._active = True

    def stop(self) -> None:
        if not self._active:
            return
        self._active = False
        if self.mode == CALLS:
            self.counted = {"calls": sum(cell[0] for cell in self._cells)}
        elif self.mode == SWITCHES:
            now = _voluntary_switches()
            started = self._switches_at_start
            self.counted = {"switches": sum(n - started.get(t, 0) for t, n in now.items())}


def _voluntary_switches() -> dict[str, int]:
    """Thread id -> voluntary context switches so far, for every thread of this process."""
    out: dict[str, int] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    out[task.name] = int(line.split()[1])
        except OSError:
            continue  # the thread ended meanwhile
    return out
