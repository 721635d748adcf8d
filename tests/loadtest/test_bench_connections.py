"""`crossroads bench connections`: the plumbing on a tiny run (no speed is asserted).

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import json

import pytest

from loadtest import bench, bench_connections


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["connections", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--players", "--fanout", "--rounds", "--probes", "--no-reference", "--json"):
        assert option in out


def test_tiny_run_reports_rss_probes_and_fanout_beside_the_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The front and the libzmq relay (pyzmq is a test dependency) measured the same way."""
    argv = ["connections", "--players", "20", "--fanout", "5,20,50", "--rounds", "3"]
    assert bench.main([*argv, "--probes", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "libzmq" in report["reference_kind"]
    for side in ("front", "reference"):
        result = report[side]
        assert result["players"] == 20
        assert result["rss_after_kb"] > 0 and result["rss_before_kb"] > 0
        assert len(result["probe_idle_ms"]) == 20 and len(result["probe_busy_ms"]) == 20
        assert sorted(result["fanout"], key=int) == ["5", "20"]  # capped at --players
        median, last = result["fanout"]["20"]
        assert len(last) == 3 and all(m <= lst for m, lst in zip(median, last, strict=True))


def test_the_table_sets_each_measure_beside_the_reference_with_the_ratio() -> None:
    front = bench_connections.Result(10, 1000, 1100, [1.0, 1.0], [2.0, 2.0], {10: ([3.0], [4.0])})
    relay = bench_connections.Result(10, 500, 520, [0.5, 0.5], [1.0, 1.0], {10: ([1.0], [2.0])})
    text = bench_connections.table(front, relay, "a relay")
    assert "| RSS per player, KB | 10.00 | 2.00 | 5.00x |" in text
    assert "| fan-out to 10: last arrival p50 ms | 4.00 | 2.00 | 2.00x |" in text
    alone = bench_connections.table(front, None, "skipped (--no-reference)")
    assert "| probe ping idle, p50 ms | 1.00 | - | - |" in alone
    assert "reference: skipped" in alone


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--fanout", "x"], "argument --fanout: expected a comma list"),
        (["--players", "0"], "argument --players: must be positive"),
        (["--rounds", "1.5"], "argument --rounds: expected a number"),
    ],
)
def test_bad_numbers_are_one_line_errors(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["connections", *argv])
    assert exc.value.code == 2
    assert said in capsys.readouterr().err.splitlines()[-1]
