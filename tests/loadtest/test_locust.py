"""`crossroads loadtest`: a short headless Locust run against a real, locally started server.

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prockit import alive

from loadtest import runner

REPO_ROOT = Path(__file__).resolve().parents[2]
VERBS = ("look", "move", "say", "take", "drop", "broadcast")
RUN_LIMIT_S = 55.0


def _kill(pid: int) -> None:
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        runner.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--users", "--spawn-rate", "--run-time", "--server", "--updates", "--csv"):
        assert option in out
    for option in ("--html", "--web", "--processes", "--wait"):
        assert option in out


@pytest.mark.parametrize(
    ("option", "bad"),
    [("--wait", bad) for bad in ("x", "3-1", "1-2-3", "-1-2")]
    + [("--run-time", bad) for bad in ("5x", "", "0", "0s", "1m-2s", "s", "1.5m")],
)
def test_a_bad_wait_range_or_run_time_is_one_clear_line(
    option: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused while parsing, so no local server or Locust starts for it.
    with pytest.raises(SystemExit) as exc:
        runner.main([option, bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--request-timeout", "0"], "--request-timeout and --login-timeout"),
        (["--login-timeout", "-1"], "--request-timeout and --login-timeout"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--web", "--web-port", "99999"], "--web-port 99999 is not a port"),
        (["--spawn-rate", "0"], "--spawn-rate must be positive"),
        (["--spawn-rate", "nan"], "--spawn-rate must be positive"),
        (["--request-timeout", "inf"], "--request-timeout and --login-timeout"),
        (["-u", "3", "--processes", "4"], "--processes 4 is more than --users 3"),
    ],
)
def test_bad_numbers_are_one_line_before_anything_starts(
    options: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert runner.main(options) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and said in err, err


def test_a_web_port_in_use_is_one_line_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert runner.main(["--web", "--web-host", "127.0.0.1", "--web-port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"cannot open the web UI on 127.0.0.1:{port}" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("good", ["20", "30s", "2m", "1h20m", "3h30m10s"])
def test_run_times_locust_reads_are_taken(good: str) -> None:
    assert runner.build_parser("loadtest").parse_args(["-t", good]).run_time == good


def test_progress_line_reads_the_aggregated_row(tmp_path: Path) -> None:
    prefix = str(tmp_path / "run")
    assert runner.progress_line(prefix, 3.0) is None  # before Locust wrote anything
    stats = Path(f"{prefix}_stats.csv")
    stats.write_text("Type,Name,Request Count,Failure Count\n")
    assert runner.progress_line(prefix, 3.0) is None  # no requests yet
    stats.write_text(
        "Type,Name,Request Count,Failure Count\ngame,look,1200,0\n,Aggregated,4512,3\n"
    )
    assert runner.progress_line(prefix, 20.4) == "  20s: 4,512 requests, 3 failed"
    stats.write_text("Type,Name,Request Count,Failure Count\n,Aggregated,45")  # mid-rewrite
    assert runner.progress_line(prefix, 21.0) is None


def test_summary_table_from_locust_rows() -> None:
    def row(kind: str, name: str, count: int, fails: int, rate: float) -> dict[str, str]:
        return {
            "Type": kind,
            "Name": name,
            "Request Count": str(count),
            "Failure Count": str(fails),
            "Requests/s": str(rate),
            "50%": "5",
            "95%": "20",
            "99%": "40",
        }

    rows = [
        row("update", "broadcast", 10, 0, 1.0),
        row("game", "look", 40, 1, 4.0),
        row("game", "login", 5, 0, 0.5),
        row("", "Aggregated", 55, 1, 5.5),
    ]
    table = runner.summary(rows)
    assert "| look | 40 | 1 | 4.0 | 5 | 20 | 40 |" in table.splitlines()
    assert "| broadcast | 10 | 0 |" in table and "| all requests | 55 |" in table
    assert "actions/s (game verbs, login excluded): 4.0; failures: 1" in table


def test_a_failed_run_says_why(tmp_path: Path) -> None:
    """The reasons Locust recorded (its PREFIX_failures.csv, in its own columns) follow the
    summary, one line each, the most frequent first, long messages cut."""
    prefix = tmp_path / "run"
    with open(f"{prefix}_failures.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"])
        out.writerow(["update", "broadcast", "not heard within 5 s", "1", "1.0", "1.0"])
        out.writerow(["game", "look", "ServerUnavailable('no answer\nafter 5 s')", "3", "1", "2"])
        out.writerow(["game", "say", "x" * 500, "2", "1.0", "1.0"])
    reasons = runner.failure_reasons(str(prefix))
    assert reasons[0] == "- 3 x game look: ServerUnavailable('no answer after 5 s')"
    assert reasons[1].startswith("- 2 x game say: xxx") and len(reasons[1]) < 200
    assert reasons[2] == "- 1 x update broadcast: not heard within 5 s"
    assert runner.failure_reasons(str(tmp_path / "none")) == []


def test_a_failed_run_shows_the_end_of_the_local_servers_log(tmp_path: Path) -> None:
    """The local server's log lives in the run's temporary directory: after a failed run its
    last lines are shown, one line each, blank lines left out."""
    log = tmp_path / "serve.log"
    first = "2026-12-05T14:32:01.000Z front[front.vm.1.ab] WARNING gameserver.front: one"
    lines = [first, "", *(f"line {n}" for n in range(30)), "x" * 500]
    log.write_text("\n".join(lines) + "\n")
    tail = runner.server_log_tail(log)
    assert len(tail) == runner.MAX_LOG_LINES and first not in tail
    assert tail[-2] == "line 29" and tail[-1].endswith("...") and len(tail[-1]) < 200
    assert runner.server_log_tail(tmp_path / "missing.log") == []
    # A long log is read from its end only; a line cut at the start of that end is left out.
    log.write_text("first\n" + "x" * (2 * runner.LOG_TAIL_BYTES) + "\nlast\n")
    assert runner.server_log_tail(log) == ["last"]


def test_headless_run_against_a_local_server(tmp_path: Path, own_data_dir: Path) -> None:
    # Relative report paths land under the directory the command ran in (not in the package's).
    prefix, html = tmp_path / "out" / "run", tmp_path / "out" / "report.html"
    cmd = [sys.executable, "-m", "crossroads", "loadtest", "--users", "20"]
    cmd += [
        "--spawn-rate",
        "20",
        "--run-time",
        "12s",
        "--csv",
        "out/run",
        "--html",
        "out/report.html",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=RUN_LIMIT_S)
    finally:
        _kill(proc.pid)
        proc.wait()
    server = re.search(r"local server pid (\d+)", out)
    assert server, out
    server_pid = int(server[1])
    try:
        assert not alive(server_pid), "the local server outlived the command"
    finally:
        _kill(server_pid)
    assert proc.returncode == 0, out
    with (tmp_path / "out" / "run_final.csv").open(newline="") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    for verb in VERBS:
        assert int(rows[verb]["Request Count"]) > 0, (verb, out)
    assert int(rows["Aggregated"]["Failure Count"]) == 0, out
    assert Path(f"{prefix}_stats.csv").stat().st_size > 0
    assert html.stat().st_size > 0
    assert "| look |" in out and "| broadcast |" in out
    # Progress while it ran (every runner.PROGRESS_S; the run lasts longer than that).
    assert re.search(r"\n  \d+s: [\d,]+ requests, 0 failed\n", out), out
    # The throwaway server's key stayed in the run's directory, not the user's known hosts.
    assert not (own_data_dir / "crossroads" / "known_hosts").exists()


def test_a_server_that_is_down_is_one_line_before_locust_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a port nobody listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        server = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    # It ran Locust and reported 0 requests, 0 failures, exit 0: the logins were still waiting.
    assert runner.main(["--server", server, "-u", "2", "-t", "5s"]) == 1
    captured = capsys.readouterr()
    assert "locust pid" not in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and f"nothing answers at {server} (Connection refused)" in lines[0]


def test_a_run_in_which_no_request_ended_fails(tmp_path: Path, own_data_dir: Path) -> None:
    # Something listens, but it is no server: nothing fails within the run, nothing ends.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        server = f"tcp://127.0.0.1:{mute.getsockname()[1]}"
        command = [sys.executable, "-m", "crossroads", "loadtest", "--server", server]
        done = subprocess.run(
            [*command, "-u", "2", "-t", "3s"],
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            capture_output=True,
            text=True,
            timeout=RUN_LIMIT_S,
        )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "no request ended in" in done.stderr.strip().splitlines()[-1], done.stderr


def test_two_load_tests_with_locust_processes_run_at_once(tmp_path: Path) -> None:
    """With --processes, Locust's master listened for its workers on 5557 on every interface:
    a second load test meanwhile died in Locust's "Address already in use" traceback. Each
    run's master now takes a free loopback port."""
    cmd = [sys.executable, "-m", "crossroads", "loadtest", "--users", "6", "--spawn-rate", "6"]
    cmd += ["--run-time", "6s", "--processes", "2"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    runs = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        runs.append(
            subprocess.Popen(
                cmd,
                cwd=tmp_path / str(i),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
    outs = []
    try:
        for proc in runs:
            outs.append(proc.communicate(timeout=RUN_LIMIT_S)[0])
    finally:
        for proc in runs:
            _kill(proc.pid)
            proc.wait()
        for out in outs:  # each run's local server, should it have outlived its command
            if server := re.search(r"local server pid (\d+)", out):
                _kill(int(server[1]))
    for proc, out in zip(runs, outs, strict=True):
        assert proc.returncode == 0, out[-3000:]
        assert "Traceback" not in out and "| look |" in out, out[-3000:]


def test_the_local_servers_budgets_fit_the_crowd_of_newcomers() -> None:
    """serve's defaults (30 new accounts at once, 10 logins/s) refused most of a 1,000-user
    load test's newcomers; the local server is started with budgets that fit its crowd."""
    from loadtest.runner import budgets_for

    assert budgets_for(1000, 10) == ["--registration-burst", "1000", "--logins-per-s", "20"]
    assert budgets_for(5, 1) == ["--registration-burst", "30", "--logins-per-s", "10"]


def test_locust_workers_build_their_default_options_once() -> None:
    """Locust's worker asked for its defaults once per option of every spawn message, each
    time building its whole argument parser; the locustfile builds them once per process.
    Checked in a child: Locust's import patches the process for gevent."""
    check = """
from locust import argument_parser, runners
import loadtest.locustfile  # noqa: F401
built = []
empty = argument_parser.get_empty_argument_parser
argument_parser.get_empty_argument_parser = lambda *a, **k: built.append(1) or empty(*a, **k)
first = runners.argument_parser.default_args_dict()
again = [runners.argument_parser.default_args_dict() for _ in range(60)]
assert first == argument_parser.default_args_dict.__wrapped__() and "host" in first, first
assert all(d == first and d is not first for d in again)
assert len(built) == 2, built  # the cached build, and the comparison's fresh one
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_new_users_spread_their_logins_over_locusts_dispatch_interval() -> None:
    """Locust starts a batch of new users at once every dispatch interval; each waits a share of
    that interval before logging in, so a ramp-up of 10 users/s arrives as 10/s, not as ten at
    once. The spread is Locust's own interval, read from its dispatcher; below one user a
    second users come one by one already. The locustfile also shortens the GIL's switch
    interval for its process (the I/O thread and gevent's hub share it)."""
    check = """
import sys
from types import SimpleNamespace
from locust.dispatch import UsersDispatcher
from locust.runners import WorkerNode
from loadtest.locustfile import GIL_SWITCH_INTERVAL_S, PlayerUser, arrival_spread_s
assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S < 0.005
for rate in (1, 2.5, 10, 37.5):
    dispatcher = UsersDispatcher(worker_nodes=[WorkerNode("w")], user_classes=[PlayerUser])
    dispatcher.new_dispatch(target_user_count=1000, spawn_rate=rate)
    assert arrival_spread_s(SimpleNamespace(spawn_rate=rate)) == dispatcher._wait_between_dispatch
assert arrival_spread_s(SimpleNamespace(spawn_rate=0.5)) == 0.0
assert arrival_spread_s(None) == 0.0
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
