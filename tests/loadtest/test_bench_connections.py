"""`crossroads bench connections`: the plumbing on a tiny run (no speed is asserted).

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import json

import pytest

from loadtest import bench


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["connections", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--players", "--fanout", "--rounds", "--probes", "--json"):
        assert option in out


def test_tiny_run_reports_rss_probes_and_fanout(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["connections", "--players", "20", "--fanout", "5,20,50", "--rounds", "3"]
    assert bench.main([*argv, "--probes", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["players"] == 20
    assert result["rss_after_kb"] > 0 and result["rss_before_kb"] > 0
    assert len(result["probe_idle_ms"]) == 20 and len(result["probe_busy_ms"]) == 20
    assert sorted(result["fanout"], key=int) == ["5", "20"]  # capped at --players
    median, last = result["fanout"]["20"]
    assert len(last) == 3 and all(m <= lst for m, lst in zip(median, last, strict=True))
