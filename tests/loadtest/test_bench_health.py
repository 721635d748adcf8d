"""`crossroads bench health`: the plumbing on a tiny run (no speed is asserted: the figures are
the benchmark's to print, see README).

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import re

import pytest

from loadtest import bench


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["health", "--help"])
    assert exc.value.code == 0
    assert "--runs" in capsys.readouterr().out


@pytest.mark.slow
def test_tiny_run_measures_every_check_against_a_live_front_and_relay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench.main(["health", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    rows = {
        m[1]: m for m in re.finditer(r"^\| (\w+) \| ([^|]+) \| ([\d.-]+) \| ([\d.]+) \|", out, re.M)
    }
    assert set(rows) == {"front", "relay", "worker"}
    assert rows["front"][2].strip() == "crossroads ping"
    assert all(float(rows[name][4]) > 0 for name in rows)  # each check really ran, and passed
