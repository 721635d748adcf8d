"""`crossroads bench game`: its rounds and their medians, and the plumbing on a tiny run (no
speed is asserted: the figures are the benchmark's to print, see README).

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import json
import socket

import pytest

from loadtest import bench
from loadtest.bench_game import GameRun, rows_of, table


def _run(workers: int, round_: int, actions: int) -> GameRun:
    run = GameRun("cpu", workers, round_, actions=actions, seconds=1.0, status="ok")
    run.latencies_ms = [float(actions)]
    return run


def test_rows_give_the_median_round_and_the_ratio_within_each_round() -> None:
    # Round 2 ran on a slow minute: both counts low. Its ratio is still 2, while the
    # medians of the two rows taken apart would say 140 / 90.
    runs = [
        _run(1, 1, 100),
        _run(2, 1, 200),
        _run(1, 2, 50),
        _run(2, 2, 100),
        _run(1, 3, 90),
        _run(2, 3, 140),
    ]
    one, two = rows_of(runs)
    assert (one.rate, two.rate) == (90, 140)
    assert two.speedup() == 2.0  # ratios 2.0, 2.0, 1.56
    assert one.speedup() == 1.0 and rows_of(runs[1::2])[0].speedup() is None  # no 1 worker
    text = table(runs)
    assert "200 / 100 / 140" in text and "2.00x" in text


def test_a_round_that_failed_shows_its_error_in_the_row() -> None:
    failed = GameRun("cpu", 2, 2, status="error", note="GameBenchError: did not start")
    text = table([_run(1, 1, 100), _run(2, 1, 200), _run(1, 2, 100), failed])
    assert "GameBenchError: did not start" in text


def test_help_names_the_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["game", "--help"])
    assert exc.value.code == 0
    assert "--rounds" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (["--duration", "0"], "argument --duration: must be positive"),
        (["--warmup", "-1"], "argument --warmup: must not be negative"),
        (["--duration", "nan"], "argument --duration: expected a finite number, got 'nan'"),
    ],
)
def test_a_bad_duration_is_one_line_naming_the_command(
    bad: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["game", *bad])
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"crossroads bench game: error: {said}"


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (["--command", " "], "--command must not be empty"),
        (["--store", "bogus"], "--store takes a Redis URL (redis://host:port/db), not 'bogus'"),
        (["--store", "sqlite:///x.db"], "--store takes a Redis URL"),
    ],
)
def test_a_bad_option_is_one_line_before_any_server_starts(
    bad: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["game", *bad]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().startswith(f"crossroads bench game: {said}"), captured.err
    assert "\n" not in captured.err.strip() and "[1/" not in captured.err


def test_a_server_that_cannot_start_is_one_line_with_its_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a port nobody listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["game", "--modes", "light", "--workers", "1", "--rounds", "1"]
    assert bench.main([*argv, "--store", f"redis://127.0.0.1:{port}/0"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    # It was a traceback saying "did not start within 60s", though the server had exited.
    assert last.startswith("crossroads bench game: the server exited: "), last
    assert f"127.0.0.1:{port}" in last and "refused" in last, last


def _tiny_run(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[list[dict], str]:
    """A run of half a second per count, 1 and 2 workers, 2 clients: its JSON rows, stderr."""
    argv = ["game", "--workers", "1,2", "--duration", "0.5", "--warmup", "0.2"]
    assert bench.main([*argv, "--clients", "2", "--json", *options]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out)["rows"], captured.err


@pytest.mark.slow
def test_tiny_run_has_every_round_of_every_worker_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows, err = _tiny_run(capsys, "--modes", "light", "--rounds", "2")
    assert [(row["mode"], row["workers"]) for row in rows] == [("light", 1), ("light", 2)]
    for row in rows:
        assert [r["round"] for r in row["rounds"]] == [1, 2]
        assert all(r["status"] == "ok" and r["actions"] > 0 for r in row["rounds"])
    assert rows[1]["vs_1_worker"] > 0
    assert "2 round(s) (median)" in err


@pytest.mark.slow
def test_the_cpu_mode_has_the_bare_burn_loop_as_its_reference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows, _ = _tiny_run(capsys, "--modes", "cpu", "--cpu-burn", "1000")
    assert [(row["mode"], row["workers"]) for row in rows] == [
        ("cpu", 1),
        ("cpu", 2),
        ("burn", 1),
        ("burn", 2),
    ]
    burns = rows[2:]
    assert all(row["rounds"][0]["actions"] > 0 and row["p50_ms"] is None for row in burns)
    assert burns[1]["vs_1_worker"] > 0
