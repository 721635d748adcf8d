"""Processes that tests start: whether one is still there (tests kill what they start by PID,
and check that it is gone)."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether a process with this PID exists (a zombie counts until its parent reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
