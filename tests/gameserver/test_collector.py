"""The front's garbage-collector settings (gameserver/collector.py), in a fresh interpreter so
the test process's own collector is left as it was."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from gameserver import collector
collector.settle()
print(gc.get_freeze_count() > 0, gc.get_threshold()[0] == collector.YOUNG_THRESHOLD,
      gc.get_count()[0] < 100, gc.isenabled())
"""


def test_settle_freezes_start_up_and_collects_young_objects_rarely() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["True", "True", "True", "True"]
