"""The pattern demos' command lines: bad input is one line on stderr and exit status 2.

Every `python -m engine.patterns.X` is run for real with a bad endpoint and with bad numbers
(negative, zero where zero means nothing, nan): each must stop before serving, with no
traceback, its last stderr line naming the program and the problem. A port already taken and a
--dir that cannot be made are the machine refusing, status 1. Then `positive`, the argparse
type the demos and the game's commands share, case by case.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import constants as c
from engine.errors import ZMQError
from engine.patterns import demo_cli
from engine.patterns.demo_cli import positive

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Generous: a refusal takes well under a second, but the machine may be busy with other suites.
TIMEOUT_S = 30.0
#: Endpoints a demo may bind or dial if it got that far: the OS picks the port, nothing answers.
ANY = "tcp://127.0.0.1:0"
NOBODY = "tcp://127.0.0.1:9"

PP = "python -m engine.patterns.paranoid_pirate"
SP = "python -m engine.patterns.simple_pirate"
CLONE = "python -m engine.patterns.clone"
MDP = "python -m engine.patterns.majordomo"
TITANIC = "python -m engine.patterns.titanic"
FL = "python -m engine.patterns.freelance"
BSTAR = "python -m engine.patterns.binary_star"
BSTAR_ENDPOINTS = ("--frontend", ANY, "--statepub", ANY, "--statesub", NOBODY)
#: "{dir}" in a case's arguments: a directory of the test's own.
DIR = "{dir}"

BAD_ENDPOINT = "Invalid argument: invalid endpoint 'foo'"

#: (arguments after `-m`, the last stderr line expected, exactly).
ENDPOINT_CASES: list[tuple[tuple[str, ...], str]] = [
    (("paranoid_pirate", "queue", "--frontend", "foo", "--backend", ANY), f"{PP}: {BAD_ENDPOINT}"),
    (("paranoid_pirate", "queue", "--frontend", ANY, "--backend", "foo"), f"{PP}: {BAD_ENDPOINT}"),
    (("paranoid_pirate", "worker", "--backend", "foo"), f"{PP}: {BAD_ENDPOINT}"),
    (("paranoid_pirate", "worker", "--async", "--backend", "foo"), f"{PP}: {BAD_ENDPOINT}"),
    (("simple_pirate", "queue", "--frontend", "foo", "--backend", ANY), f"{SP}: {BAD_ENDPOINT}"),
    (
        ("simple_pirate", "worker", "--backend", "tcp://*:5556"),
        f"{SP}: Invalid argument: cannot connect to a wildcard host: 'tcp://*:5556'",
    ),
    (
        ("clone", "server", "--snapshot", "foo", "--publisher", ANY, "--collector", ANY),
        f"{CLONE}: {BAD_ENDPOINT}",
    ),
    (("majordomo", "broker", "--bind", "foo"), f"{MDP}: {BAD_ENDPOINT}"),
    (
        ("majordomo", "echo-worker", "--broker", "foo", "--service", "echo"),
        f"{MDP}: {BAD_ENDPOINT}",
    ),
    (
        ("majordomo", "request", "--broker", "foo", "--service", "echo", "hi"),
        f"{MDP}: {BAD_ENDPOINT}",
    ),
    (("titanic", "--broker", "foo", "--dir", DIR), f"{TITANIC}: {BAD_ENDPOINT}"),
    (("freelance", "server", "--bind", "foo"), f"{FL}: {BAD_ENDPOINT}"),
    (("freelance", "client", "--connect", "foo"), f"{FL}: {BAD_ENDPOINT}"),
    (
        ("binary_star", "--primary", "--frontend", "foo", "--statepub", ANY, "--statesub", NOBODY),
        f"{BSTAR}: {BAD_ENDPOINT}",
    ),
    (
        ("binary_star", "--backup", "--frontend", ANY, "--statepub", ANY, "--statesub", "foo"),
        f"{BSTAR}: {BAD_ENDPOINT}",
    ),
]

POSITIVE = "must be positive"
NOT_NEGATIVE = "must not be negative"

#: Each command with endpoints it would not reach: (arguments after `-m`, argparse's prog).
PP_QUEUE = (("paranoid_pirate", "queue", "--frontend", ANY, "--backend", ANY), f"{PP} queue")
PP_WORKER = (("paranoid_pirate", "worker", "--backend", NOBODY), f"{PP} worker")
CLONE_SERVER = (
    ("clone", "server", "--snapshot", ANY, "--publisher", ANY, "--collector", ANY),
    f"{CLONE} server",
)
BSTAR_PRIMARY = (("binary_star", "--primary", *BSTAR_ENDPOINTS), BSTAR)
MDP_BROKER = (("majordomo", "broker", "--bind", ANY), f"{MDP} broker")
MDP_WORKER = (
    ("majordomo", "echo-worker", "--broker", NOBODY, "--service", "e"),
    f"{MDP} echo-worker",
)
MDP_REQUEST = (
    ("majordomo", "request", "--broker", NOBODY, "--service", "e", "hi"),
    f"{MDP} request",
)
TITANIC_SERVER = (("titanic", "--broker", NOBODY, "--dir", DIR), TITANIC)
FL_CLIENT = (("freelance", "client", "--connect", NOBODY), f"{FL} client")

#: (command, option, value, what is wrong). Zero is refused where it means nothing; where it
#: means something (no work, no pause, no retry, no limit) only a negative is.
NUMBER_CASES: list[tuple[tuple[tuple[str, ...], str], str, str, str]] = [
    (PP_QUEUE, "--interval-ms", "-5", POSITIVE),
    (PP_QUEUE, "--interval-ms", "nan", "expected a finite number, got 'nan'"),
    (PP_QUEUE, "--liveness", "0", POSITIVE),
    (PP_QUEUE, "--max-pending", "-1", POSITIVE),
    (PP_WORKER, "--work-ms", "-1", NOT_NEGATIVE),
    (PP_WORKER, "--reconnect-init-ms", "nan", "expected a finite number, got 'nan'"),
    (PP_WORKER, "--reconnect-max-ms", "-1", POSITIVE),
    (CLONE_SERVER, "--hugz", "nan", "expected a finite number, got 'nan'"),
    (CLONE_SERVER, "--hugz", "-1", POSITIVE),
    (CLONE_SERVER, "--sndhwm", "-1", NOT_NEGATIVE),
    (BSTAR_PRIMARY, "--heartbeat", "nan", "expected a finite number, got 'nan'"),
    (BSTAR_PRIMARY, "--heartbeat", "-1", POSITIVE),
    (MDP_BROKER, "--heartbeat-ms", "0", POSITIVE),
    (MDP_BROKER, "--liveness", "-1", POSITIVE),
    (MDP_BROKER, "--request-ttl-ms", "nan", "expected a number, got 'nan'"),
    (MDP_WORKER, "--heartbeat-ms", "-1", POSITIVE),
    (MDP_WORKER, "--reconnect-ms", "-1", NOT_NEGATIVE),
    (MDP_REQUEST, "--timeout-ms", "-1", POSITIVE),
    (MDP_REQUEST, "--retries", "-2", NOT_NEGATIVE),
    (TITANIC_SERVER, "--heartbeat-ms", "0", POSITIVE),
    (TITANIC_SERVER, "--liveness", "nan", "expected a number, got 'nan'"),
    (TITANIC_SERVER, "--reconnect-ms", "-1", NOT_NEGATIVE),
    (TITANIC_SERVER, "--timeout-ms", "-1", POSITIVE),
    (TITANIC_SERVER, "--retries", "-1", NOT_NEGATIVE),
    (TITANIC_SERVER, "--retry-ms", "0", POSITIVE),
    (FL_CLIENT, "--count", "-1", POSITIVE),
    (FL_CLIENT, "--timeout-ms", "nan", "expected a finite number, got 'nan'"),
]


def run_demo(args: tuple[str, ...], directory: Path) -> subprocess.CompletedProcess[str]:
    """`python -m engine.patterns.<args>` from the repository, this checkout's engine first."""
    argv = [a.replace(DIR, str(directory)) for a in args]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", f"engine.patterns.{argv[0]}", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def assert_refused(run: subprocess.CompletedProcess[str], status: int, last_line: str) -> None:
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.splitlines()[-1:] == [last_line], run.stderr
    assert run.returncode == status, run.stderr


def test_the_tables_cover_every_demo() -> None:
    """Each module with a command line has its bad-endpoint and bad-number cases."""
    demos = {
        path.stem
        for path in (REPO_ROOT / "engine" / "patterns").glob("*.py")
        if "def main(" in path.read_text()
    }
    assert demos == {args[0] for args, _ in ENDPOINT_CASES}
    assert demos - {"simple_pirate"} == {command[0][0] for command, *_ in NUMBER_CASES}


@pytest.mark.parametrize(
    ("args", "last_line"), ENDPOINT_CASES, ids=[" ".join(args) for args, _ in ENDPOINT_CASES]
)
def test_a_bad_endpoint_is_one_line_before_serving(
    args: tuple[str, ...], last_line: str, tmp_path: Path
) -> None:
    run = run_demo(args, tmp_path / "store")
    assert_refused(run, 2, last_line)
    assert run.stdout == ""  # refused before serving: no READY, no "listening"


@pytest.mark.parametrize(
    ("command", "option", "value", "wrong"),
    NUMBER_CASES,
    ids=[f"{command[0][0]} {option} {value}" for command, option, value, _ in NUMBER_CASES],
)
def test_a_bad_number_is_argparses_one_line(
    command: tuple[tuple[str, ...], str], option: str, value: str, wrong: str, tmp_path: Path
) -> None:
    args, prog = command
    run = run_demo((*args, f"{option}={value}"), tmp_path / "store")
    assert_refused(run, 2, f"{prog}: error: argument {option}: {wrong}")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port with a listener on it, for as long as the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_is_one_line_with_status_1(taken_port: int, tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{taken_port}"
    run = run_demo(("majordomo", "broker", "--bind", endpoint), tmp_path)
    assert_refused(run, 1, f"{MDP}: Address already in use ({endpoint})")


def test_a_peer_that_never_answers_is_one_line_naming_the_demo(
    taken_port: int, tmp_path: Path
) -> None:
    """A listener that accepts and never speaks ZMTP: the request gives up, and says so under
    the demo's name (the line used to come without it)."""
    silent = f"tcp://127.0.0.1:{taken_port}"
    request = ("majordomo", "request", "--broker", silent, "--service", "e")
    run = run_demo((*request, "--timeout-ms", "100", "--retries", "0", "hi"), tmp_path)
    assert "Traceback" not in run.stderr and run.returncode == 1, run.stderr
    assert run.stderr.splitlines()[-1].startswith(f"{MDP}: "), run.stderr
    run = run_demo(
        ("freelance", "client", "--connect", silent, "--timeout-ms", "100", "hi"), tmp_path
    )
    assert "Traceback" not in run.stderr and run.returncode == 1, run.stderr
    assert run.stderr.splitlines()[-1].startswith(f"{FL}: failed: "), run.stderr


def test_a_dir_that_cannot_be_made_is_one_line_with_status_1(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    run = run_demo(("titanic", "--broker", NOBODY, "--dir", str(tmp_path / "file")), tmp_path)
    assert_refused(run, 1, f"{TITANIC}: {tmp_path / 'file'}: File exists")


# -- the pieces, in process -------------------------------------------------------------------


def test_positive_numbers() -> None:
    assert positive(int)("3") == 3 and positive(float)("0.5") == 0.5
    assert positive(int, zero=True)("0") == 0 and positive(float, zero=True)("0") == 0.0
    assert positive(float)("1e-3") == 0.001
    for parse, text, message in (
        (positive(int), "0", "must be positive"),
        (positive(float), "-0.5", "must be positive"),
        (positive(int, zero=True), "-1", "must not be negative"),
        (positive(int), "two", "expected a number, got 'two'"),
        (positive(int), "1.5", "expected a number, got '1.5'"),
        (positive(int), "nan", "expected a number, got 'nan'"),
        (positive(float), "nan", "expected a finite number, got 'nan'"),
        (positive(float), "-inf", "expected a finite number, got '-inf'"),
        (positive(float, zero=True), "inf", "expected a finite number, got 'inf'"),
    ):
        with pytest.raises(argparse.ArgumentTypeError) as caught:
            parse(text)
        assert str(caught.value) == message


def test_start_up_errors_become_one_line_and_a_status(capsys: pytest.CaptureFixture[str]) -> None:
    cases: list[tuple[Exception, int, str]] = [
        (
            ZMQError(c.EINVAL, "cannot connect to a wildcard host: 'tcp://*:1'"),
            2,
            "prog: Invalid argument: cannot connect to a wildcard host: 'tcp://*:1'",
        ),
        (
            ZMQError(c.EPROTONOSUPPORT, "no tcpx"),
            2,
            "prog: Protocol not supported: no tcpx (tcp://*:1)",
        ),
        (ZMQError(c.EADDRINUSE), 1, "prog: Address already in use (tcp://*:1)"),
        (ValueError("bad\nvalue"), 2, "prog: bad value (tcp://*:1)"),
        (FileExistsError(17, "File exists", "/d"), 1, "prog: /d: File exists (tcp://*:1)"),
    ]
    # The endpoints given are added only when the message names none of them.
    for exc, status, line in cases:
        with pytest.raises(SystemExit) as caught, demo_cli.startup("prog", "tcp://*:1"):
            raise exc
        assert caught.value.code == status
        assert capsys.readouterr().err == line + "\n"
    with pytest.raises(KeyError), demo_cli.startup("prog"):  # not a start-up error: untouched
        raise KeyError("bug")


def test_check_connect_refuses_what_connect_would() -> None:
    demo_cli.check_connect("tcp://127.0.0.1:9", "ipc:///nonexistent/socket")  # dials later
    with pytest.raises(ZMQError, match="invalid endpoint 'foo'"):
        demo_cli.check_connect("foo")
    with pytest.raises(ZMQError, match="wildcard"):
        demo_cli.check_connect("tcp://*:5555")
    with pytest.raises(ZMQError):
        demo_cli.check_connect("tcp://127.0.0.1:9", routing_id=b"x" * 256)
