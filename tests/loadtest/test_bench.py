"""`crossroads bench`: the CLI shape, the table and JSON, pyzmq being optional, timeouts.

Counts are tiny and no speed is asserted: this 2-core VM is shared, only the plumbing is tested.
No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

import engine
from loadtest import bench

HAVE_PYZMQ = importlib.util.find_spec("zmq") is not None
HAVE_SYNC = hasattr(engine, "Context")
#: 200 msgs (50 at 1 KiB), 10 round trips after 10 warm-up, fan-out of 20 (2) msgs to 10 (100)
TINY = ["--count", "200", "--rounds", "1"]


def test_help_lists_the_engine_suite(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--help"], prog="crossroads bench")
    assert exc.value.code == 0
    assert "engine" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        bench.main(["engine", "--help"], prog="crossroads bench")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--count",
        "--size",
        "--transport",
        "--faces",
        "--json",
        "--timeout",
        "--rounds",
        "--subscribers",
        "--profile",
    ):
        assert option in out


def test_no_suite_means_engine() -> None:
    assert bench._normalise([]) == ["engine"]
    assert bench._normalise(["lat"]) == ["engine", "lat"]
    assert bench._normalise(["--count", "small"]) == ["engine", "--count", "small"]
    assert bench._normalise(["--help"]) == ["--help"]


def test_counts() -> None:
    default = bench.PRESETS["default"]
    assert (default.for_size(16), default.for_size(1024)) == (200_000, 50_000)
    assert (default.round_trips, default.warmup) == (5_000, 1_000)
    scaled = bench.parse_count("200")
    assert (scaled.for_size(16), scaled.for_size(1024), scaled.round_trips) == (200, 50, 10)
    assert bench.parse_count("small") is bench.PRESETS["small"]


def test_engine_json_rows_and_ratios(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "MEM_CONNECTIONS", 20)
    rc = bench.main(["engine", *TINY, "--size", "16", "1024", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(captured.out)
    rows = {(r["benchmark"], r["face"]): r for r in data["rows"]}
    labels = [
        "thr 16 B msg/s",
        "thr 1 KiB msg/s",
        "lat 16 B mean µs (lower is better)",
        "lat 16 B p50 µs (lower is better)",
        "lat 16 B p99 µs (lower is better)",
        "fan 16 B to 10 SUBs msg/s",
        "fan 16 B to 100 SUBs msg/s",
        "mem, 20 connections, KiB per accepted connection (lower is better)",
    ]
    assert set(rows) == {(label, face) for label in labels for face in ("sync", "asyncio")}
    for (label, face), row in rows.items():
        engine_runs = face == "asyncio" or HAVE_SYNC
        if engine_runs and label.startswith("mem"):  # 20 connections may fit in a page or two
            assert row["engine"] is not None
        elif engine_runs:
            assert row["engine"] is not None and row["engine"] > 0
        else:
            assert row["engine"] is None
            assert row["engine_note"] == bench.NO_SYNC_FACE
        if HAVE_PYZMQ:
            assert row["pyzmq"] is not None and row["pyzmq"] > 0
        if engine_runs and HAVE_PYZMQ:
            assert row["ratio"] == pytest.approx(row["engine"] / row["pyzmq"])
            assert row["ratio"] >= 0
        else:
            assert row["ratio"] is None
    # The human table still goes to stderr, with the same rows.
    for label in labels:
        assert label in captured.err


def test_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench.main(["engine", "thr", *TINY, "--size", "16", "--faces", "asyncio"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    lines = captured.out.splitlines()
    header = next(line for line in lines if line.startswith("benchmark"))
    assert header.split() == ["benchmark", "face", "engine", "pyzmq", "engine/pyzmq"]
    (row,) = [line for line in lines if line.startswith("thr 16 B")]
    if HAVE_PYZMQ:
        ratio = row.split()[-1]
        assert ratio.endswith("x") and float(ratio[:-1]) > 0
    assert "[1/2] thr 16 B asyncio engine" in captured.err  # progress goes to stderr


def test_event_latency_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """evt: one PUB to N asyncio SUBs, each event timed to its last subscriber."""
    rc = bench.main(["engine", "evt", "--subscribers", "5", "--rounds", "1", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rows = {r["benchmark"]: r for r in json.loads(captured.out)["rows"]}
    assert set(rows) == {
        "evt 16 B to 5 SUBs to the last SUB, p50 ms (lower is better)",
        "evt 16 B to 5 SUBs to the last SUB, max ms (lower is better)",
    }
    for row in rows.values():
        assert row["face"] == "asyncio"
        assert row["engine"] is not None and row["engine"] > 0
        if HAVE_PYZMQ:
            assert row["pyzmq"] is not None and row["pyzmq"] > 0
    p50, top = rows.values()
    assert p50["engine"] <= top["engine"]


def test_runs_without_pyzmq(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "zmq", None)  # makes `import zmq` raise ImportError
    rc = bench.main(["engine", "lat", *TINY, "--faces", "asyncio", "--transport", "ipc"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    rows = [line for line in captured.out.splitlines() if line.startswith("lat 16 B")]
    assert len(rows) == 3
    for row in rows:
        assert bench.NO_PYZMQ in row
        assert float(row.split("asyncio")[1].split()[0].replace(",", "")) > 0


def test_hung_benchmark_times_out(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "zmq", None)  # one pair of processes is enough
    argv = ["engine", "thr", "--count", "100000000", "--size", "16", "--faces", "asyncio"]
    rc = bench.main([*argv, "--timeout", "1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "timed out after 1s" in err


def test_rounds_report_their_median(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["engine", "lat", "--count", "200", "--faces", "asyncio", "--rounds", "3", "--json"]
    assert bench.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rounds"] == 3
    for run in data["runs"]:
        if run["status"] != "ok":
            continue
        assert len(run["rounds"]) == 3
        means = sorted(r["mean_us"] for r in run["rounds"])
        assert run["metrics"]["mean_us"] == means[1]


def test_profile_counts_calls_and_wakeups(capsys: pytest.CaptureFixture[str]) -> None:
    """--profile counts Python calls and context switches of both ends (no speed asserted)."""
    argv = ["engine", "thr", "--count", "2000", "--size", "16", "--faces", "sync", "--profile"]
    assert bench.main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = [r for r in data["rows"] if r["impl"] == "engine"]
    # At least the benchmark's own send() and recv() call per message are seen.
    assert row["calls"] >= 2
    assert row["switches"] >= 0


@pytest.mark.skipif(not engine.has("curve"), reason="CURVE needs PyNaCl (crossroads[curve])")
def test_curve_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """--mechanism curve: both ends secured (the engine's and pyzmq's), throughput and latency
    side by side, with CURVE named in the title and the JSON."""
    rc = bench.main(
        [
            "engine",
            "all",
            *TINY,
            "--size",
            "16",
            "--faces",
            "sync,asyncio",
            "--subscribers",
            "2",
            "--mechanism",
            "curve",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)
    assert report["mechanism"] == "curve"
    statuses = {(r["bench"], r["face"], r["impl"]): r["status"] for r in report["runs"]}
    assert all(status == "ok" for status in statuses.values()), statuses
    assert {("thr", "sync", "engine"), ("lat", "sync", "pyzmq")} <= statuses.keys()


def test_memory_rows(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """mem: a ROUTER's growth per accepted connection, the engine and pyzmq side by side."""
    monkeypatch.setattr(bench, "MEM_CONNECTIONS", 40)
    rc = bench.main(["engine", "mem", "--faces", "asyncio", "--rounds", "1", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    data = json.loads(captured.out)
    (row,) = data["rows"]
    assert row["benchmark"] == (
        "mem, 40 connections, KiB per accepted connection (lower is better)"
    )
    assert row["lower_is_better"] and row["engine"] is not None
    assert {run["count"] for run in data["runs"]} == {40}
    if HAVE_PYZMQ:
        assert row["pyzmq"] is not None and row["ratio"] is not None


def test_profile_of_memory_alone_says_there_is_nothing_to_count(capsys) -> None:
    assert bench.main(["engine", "mem", "--profile"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing to count in mem" in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["engine", "--timeout", "0"], "argument --timeout: must be positive"),
        (["engine", "--size", "16", "-1"], "argument --size: must be positive"),
        (["health", "--runs", "0"], "argument --runs: must be positive"),
    ],
)
def test_a_bad_number_is_refused_in_one_line_naming_the_command(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--timeout 0` used to run every measurement into an error; the others said
    # "--runs must be positive" without naming the command.
    with pytest.raises(SystemExit) as exc:
        bench.main(argv, prog="crossroads bench")
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == f"crossroads bench {argv[0]}: error: {said}"
