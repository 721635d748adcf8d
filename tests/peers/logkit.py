"""Waiting for a line in a log file that a process under test is still writing (its stderr,
a server's log): shared by the end-to-end and the transport tests."""

from __future__ import annotations

import re
import time
from pathlib import Path

WAIT = 30.0


def wait_log_line(path: Path, pattern: str, timeout: float = WAIT) -> re.Match[str]:
    """The first match of ``pattern`` in a log file that is still being written."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = regex.search(path.read_text(errors="replace"))
        if match:
            return match
        time.sleep(0.1)  # the file has no event to wait on; the deadline bounds the wait
    raise AssertionError(f"{pattern!r} never appeared in {path}")
