"""`crossroads bench players` on tiny sizes, against a real `crossroads serve` (and a real
redis-server): every row runs, is measured and reported beside the issue's figures."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from loadtest import bench, bench_players
from loadtest.bench_crowd import cpu_seconds

TINY = ["--duration", "0.5", "--warmup", "0", "--rounds", "1", "--rate", "40"]
SMALL_ROWS = ["--players", "3", "--closed-players", "3", "--subscribers", "5", "--logins", "4"]


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    rc = bench.main(["players", *TINY, *SMALL_ROWS, "--json", *argv])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "[1/" in captured.err  # progress went to stderr
    return json.loads(captured.out)


@pytest.mark.slow
def test_every_row_is_measured_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--listeners", "2", "--fan-events", "2")
    rows = {row["kind"]: row for row in result["rows"]}
    assert set(rows) == set(bench_players.ROWS)
    for row in rows.values():
        assert row["status"] == "ok", row
        assert row["errors"] == 0, row
        cpu = row["cpu_us_per_action"]
        assert {"front", "w1", "w2", "total"} <= set(cpu)
        assert cpu["total"] >= 0
        assert row["figures"], row
        for figure in row["figures"]:
            assert figure["target"] and figure["now"]
            assert figure["ratio"] >= 0
    # The server did the work, read from /proc. Per row, a 0.5 s row of a cheap server may stay
    # under the 10 ms clock tick; all rows together may not.
    assert sum(row["cpu_us_per_action"]["total"] for row in rows.values()) > 0
    assert rows["closed"]["figures"][0]["measured"] > 0  # actions/s
    assert {f["figure"] for f in rows["fanout"]["figures"]} == {
        "last arrival p50 ms",
        "ping p99 ms",
        "subscribers' CPU us/event",  # the receiving child's, beside the server's
    }
    assert "load" in result["intro"]
    # The listening players (twins in a child process) heard the rows' room events and
    # followed their players' moves; nobody listens in the rows without them.
    assert rows["closed"]["listeners_heard"] > 0 and rows["logins"]["listeners_heard"] > 0
    assert rows["closed"]["listeners_followed"] > 0
    assert rows["seq"]["listeners_heard"] == rows["seq"]["listeners_followed"] == 0


@pytest.mark.slow
def test_fan_out_through_relays(capsys: pytest.CaptureFixture[str]) -> None:
    """The subscribers behind two real `crossroads relay` processes, an even share each: every
    one hears every event (else the row fails), and the relays' CPU is counted per process."""
    result = run_json(capsys, "--rows", "fanout", "--fan-relays", "2", "--fan-events", "2")
    (row,) = result["rows"]
    assert row["status"] == "ok", row
    assert row["row"] == "fan-out to 5 via 2 relays"
    assert row["errors"] == 0
    assert {"front", "w1", "w2", "r1", "r2", "total"} <= set(row["cpu_us_per_action"])


def test_relays_share_the_subscribers_evenly() -> None:
    from loadtest.bench_fanout import even_shares

    assert even_shares(1000, 3) == [334, 333, 333]
    assert even_shares(1000, 2) == [500, 500]
    assert even_shares(2, 3) == [1, 1, 0]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_store_and_a_single_action(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--store", "redis", "--rows", "rate,seq", "--action", "look")
    assert [row["status"] for row in result["rows"]] == ["ok", "ok"]
    assert all(row["errors"] == 0 for row in result["rows"])
    assert "store redis" in result["intro"]


def test_text_table_names_now_and_target(capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench.main(["players", *TINY, "--rows", "seq"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "sequential look, 1" in out
    assert "p50 3.7 ms" in out and "<= 1" in out  # the figure and its target


def test_help_and_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["players", "--help"])
    assert exc.value.code == 0
    assert "--rows" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        bench.main(["players", "--rows", "nonsense"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "rows are a comma list of" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        bench.main(["players", "--duration", "nan"])
    assert exc.value.code == 2
    assert "argument --duration: expected a finite number" in capsys.readouterr().err


def test_cpu_seconds_reads_proc() -> None:
    spent = cpu_seconds(os.getpid())
    busy_until = time.perf_counter() + 0.1  # ten clock ticks of CPU
    while time.perf_counter() < busy_until:
        pass
    assert cpu_seconds(os.getpid()) > spent
    assert cpu_seconds(2**22 + 12345) == 0.0  # no such process


@pytest.mark.slow
def test_listeners_that_cannot_resume_say_why(tmp_path) -> None:
    """The listeners' child resumes its sessions before it says ready; a session the server
    does not know ends the start with the server's reason, in one line."""
    from loadtest.bench_crowd import Server
    from loadtest.bench_listeners import Listeners, RemoteListeners

    with (tmp_path / "serve.log").open("a") as log:
        server = Server(f"sqlite:///{tmp_path / 'w.sqlite3'}", 1, log)
        try:
            with pytest.raises(RuntimeError) as exc:
                RemoteListeners(
                    Listeners(
                        server.endpoints["actions"],
                        server.endpoints["updates"],
                        bench_players.server_key(server),
                        [("nobody", "A" * 32)],  # well formed, never issued
                    )
                )
        finally:
            server.stop()
    message = str(exc.value)
    assert message.startswith("the listeners' process did not start: ")
    assert "\n" not in message and "unauthorized" in message
