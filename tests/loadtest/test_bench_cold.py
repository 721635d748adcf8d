"""`crossroads bench cold`: the plumbing on a tiny run (no speed is asserted: the figures are
the benchmark's to print, see README).

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import json

import pytest

from loadtest import bench


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["cold", "--help"])
    assert exc.value.code == 0
    assert "--gaps" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--gaps", "1,x"], "--gaps"),
        (["--calls", "0"], "--calls"),
        (["--rounds", "-1"], "--rounds"),
    ],
)
def test_bad_input_is_one_line_not_a_traceback(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["cold", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err
    assert "Traceback" not in err


def test_tiny_run_gives_each_gap_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["cold", "--gaps", "1,2", "--calls", "5", "--awake-us", "10", "--rounds", "1"]
    assert bench.main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [row["gap_ms"] for row in rows] == [1, 2]
    for row in rows:
        assert row["cold_us"] > 0 and row["warm_us"] > 0 and row["awake_first_us"] > 0
        assert row["spun_through_us"] > 0
        assert row["cold_vs_warm"] == pytest.approx(row["cold_us"] / row["warm_us"])
    assert "round 1/1: 2 ms gaps" in captured.err  # progress goes to stderr, not the JSON
    assert bench.main(argv) == 0
    table = capsys.readouterr().out
    assert (
        "cold/warm" in table
        and "spun through us" in table
        and "    1 ms" in table
        and "    2 ms" in table
    )
