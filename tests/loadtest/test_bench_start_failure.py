"""A child the players bench starts that exits before it is ready is reported as exited, with
its exit code and the last lines of its log: not as one still starting. (A relay's stdout
ends a moment before its exit code can be read, and CI once saw "relay r1 did not start
within 60s" two seconds after the start.)"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.bench_crowd import BenchError, Server, start_failure


def test_a_server_that_exits_is_reported_with_its_code_and_log(tmp_path: Path) -> None:
    with socket.socket() as probe:  # held, not listening: the store's connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with open(tmp_path / "server.log", "w") as log, pytest.raises(BenchError) as failed:
            Server(f"redis://127.0.0.1:{port}/0", 1, log)
    said = str(failed.value)
    assert said.startswith("the server exited with code "), said
    assert "before it was ready: " in said and f"127.0.0.1:{port}" in said, said


def test_output_ended_is_not_still_starting(tmp_path: Path) -> None:
    # A child that said nothing and exits at once: right after its output ends it may not be
    # reaped yet, so the reason waits for its exit code.
    with open(tmp_path / "child.log", "w") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('gone', file=sys.stderr); sys.exit(3)"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.read() == ""  # its output has ended
        said = start_failure(child, True, "relay r1", log)
        child.stdout.close()
    assert said == "relay r1 exited with code 3 before it was ready: gone", said


def test_a_child_still_running_without_saying_ready(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(tmp_path / "child.log", "w") as log:
            said = start_failure(child, False, "relay r1", log)
        assert said.startswith("relay r1 did not start within "), said
    finally:
        child.kill()
        child.wait()
