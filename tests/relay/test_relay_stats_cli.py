"""`crossroads relay-stats` pointed at the wrong thing says so in one line, never a traceback:
another service's port (the front's actions port answers, but not with stats), a port nobody
answers on, an endpoint that does not parse."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "game"))  # serverkit

from relaykit import REPO_ROOT, WAIT, Publisher, Relay, env
from serverkit import Server


def relay_stats(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crossroads", "relay-stats", *args],
        env=env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def one_clear_line(done: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("crossroads relay-stats: "), lines
    assert words in lines[0]


def test_another_services_port_is_named_as_such(tmp_path: Path) -> None:
    # A cleartext front answers the stats request with its own error (a CURVE one, the default,
    # does not answer a plaintext peer at all: "no answer", as below).
    log = tmp_path / "serve.log"
    front = Server(f"sqlite:///{tmp_path / 'game.db'}", log, 0, "--insecure-players")
    try:
        done = relay_stats(front.actions, "--timeout", "5")
        one_clear_line(done, 1, "not with a relay's stats")
    finally:
        front.kill_all()


def test_nobody_answering_and_bad_endpoints_are_one_line_each() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: nothing will answer
        port = s.getsockname()[1]
        one_clear_line(relay_stats(f"tcp://127.0.0.1:{port}", "--timeout", "0.3"), 1, "no answer")
    one_clear_line(relay_stats("foo://"), 1, "invalid endpoint")
    one_clear_line(relay_stats("tcp://127.0.0.1:99999"), 1, "port out of range")
    one_clear_line(relay_stats("tcp://127.0.0.1:1", "--timeout", "0"), 2, "must be positive")
    one_clear_line(relay_stats("tcp://127.0.0.1:1", "--timeout", "nan"), 2, "must be positive")


@pytest.mark.parametrize("as_json", [False, True])
def test_a_relays_stats_port_still_answers(
    publisher: Callable[..., Publisher], relay: Callable[..., Relay], as_json: bool
) -> None:
    r = relay(publisher().endpoint)
    done = relay_stats(r.stats_endpoint, *(["--json"] if as_json else []))
    assert done.returncode == 0, done.stderr
    assert ('"upstream_up": ' if as_json else "| upstream link up ") in done.stdout
