"""`crossroads bench metrics`: the plumbing on a tiny run (no speed is asserted: the figures are
the benchmark's to print)."""

from __future__ import annotations

import re

import pytest

from loadtest import bench


def test_tiny_run_prints_both_modes_and_the_scrape(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["metrics", "--actions", "40"]) == 0
    out = capsys.readouterr().out
    without = re.search(r"without metrics\s+([\d.]+) us", out)
    with_ = re.search(r"with metrics\s+([\d.]+) us", out)
    assert without and with_ and float(without[1]) > 0 and float(with_[1]) > 0
    assert re.search(r"one scrape of the worker's /metrics: \d+ us", out)


def test_bad_count_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["metrics", "--actions", "0"])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "crossroads bench metrics: error: argument --actions: must be positive"
