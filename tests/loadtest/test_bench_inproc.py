"""`crossroads bench inproc`: the plumbing on a tiny run (no speed is asserted: the figures are
the benchmark's to print, see README).

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import json

import pytest

from loadtest import bench

pytestmark = pytest.mark.timeout(120)


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["inproc", "--help"])
    assert exc.value.code == 0
    assert "--count" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "option"), [(["--count", "0"], "--count"), (["--rounds", "-1"], "--rounds")]
)
def test_bad_input_is_one_line_not_a_traceback(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["inproc", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err
    assert "Traceback" not in err


def test_tiny_run_gives_both_libraries_each_measure(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["inproc", "--count", "2000", "--rounds", "1"]
    assert bench.main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    medians = json.loads(captured.out)
    assert set(medians) == {"engine", "zmq"}
    for figures in medians.values():
        assert set(figures) == {"thr", "lat", "same"}
        assert all(value > 0 for value in figures.values())
    assert "round 1/1: engine" in captured.err  # progress goes to stderr, not the JSON
    assert bench.main(argv) == 0
    table = capsys.readouterr().out
    assert "engine vs pyzmq" in table and "REQ/REP round trip" in table
