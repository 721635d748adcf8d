"""`crossroads relay` refuses a bad endpoint or address in one line, before it learns, makes or
binds anything."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine import curve_keypair

UPSTREAM = "tcp://127.0.0.1:9"  # never dialled: the refusal comes first


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--upstream", "foo"], "--upstream 'foo'"),
        (["--upstream", UPSTREAM, "--bind", "nope"], "--bind 'nope'"),
        (["--upstream", UPSTREAM, "--stats-bind", "tcp://*:99999"], "--stats-bind"),
        (
            [
                *("--upstream", UPSTREAM),
                *("--actions-upstream", "tcp://*:7301"),
                *("--actions-bind", "tcp://*:0"),
            ],
            "--actions-upstream",
        ),
        (["--upstream", UPSTREAM, "--key-bind", "udp:/"], "--key-bind"),
        (["--upstream", UPSTREAM, "--metrics-bind", "foo"], "--metrics-bind 'foo'"),
    ],
)
def test_a_bad_endpoint_is_one_line_and_leaves_nothing_behind(
    tmp_path: Path, options: list[str], named: str
) -> None:
    keys = tmp_path / "keys"
    known_hosts = tmp_path / "known_hosts"
    command = [sys.executable, "-m", "relay.cli", *options, "--keys-dir", str(keys)]
    done = subprocess.run(
        [*command, "--known-hosts", str(known_hosts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert named in lines[0], lines[0]
    assert "is not an endpoint" in lines[0] or "expected HOST:PORT" in lines[0], lines[0]
    assert done.stdout == ""
    assert not keys.exists() and not known_hosts.exists()


@pytest.mark.parametrize("option", ["--bind", "--stats-bind", "--key-bind", "--actions-bind"])
def test_a_taken_port_is_one_line_naming_its_option(tmp_path: Path, option: str) -> None:
    # It said "relay: Address already in use", without saying which of up to four binds.
    public, _ = curve_keypair()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        binds = {"--bind": "tcp://127.0.0.1:0", option: endpoint}
        if option == "--actions-bind":
            binds["--actions-upstream"] = UPSTREAM
        command = [sys.executable, "-m", "relay.cli", "--upstream", UPSTREAM]
        # "=": a Z85 key may start with "-", which argparse would take for an option.
        command += [f"--upstream-key={public.decode()}", "--keys-dir", str(tmp_path / "keys")]
        done = subprocess.run(
            [*command, *(part for pair in binds.items() for part in pair)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"crossroads relay: cannot bind {option} {endpoint}: Address already in use"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--hwm", "-1", "must not be negative"),  # was taken, and the relay started
        ("--history", "-1", "must not be negative"),
        ("--stats-interval", "nan", "expected a finite number, got 'nan'"),
    ],
)
def test_a_bad_number_is_refused_before_anything_starts(
    tmp_path: Path, option: str, value: str, said: str
) -> None:
    command = [sys.executable, "-m", "relay.cli", "--upstream", UPSTREAM, option, value]
    done = subprocess.run(
        [*command, "--keys-dir", str(tmp_path / "keys")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.endswith(f"error: argument {option}: {said}"), last
    assert not (tmp_path / "keys").exists()
