"""The front's and a worker's health, as Docker sees them: `crossroads-health front` is a real
round trip, and a worker's liveness file stays fresh only while the worker hears its front."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from serverkit import REPO_ROOT, WAIT, StartServer

from gameserver import health
from loadtest.ports import unused_port

CHECKER = REPO_ROOT / "gameserver" / "health.py"


def check(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The checker as the image runs it: no site-packages, nothing but the standard library."""
    return subprocess.run(
        [sys.executable, "-IS", str(CHECKER), *argv],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env=env,
        check=False,
    )


def wait_file(path: Path, fresh: bool, max_age: float = 2 * health.TOUCH_EVERY_S) -> None:
    deadline = time.monotonic() + WAIT
    while (check("file", str(path), "--max-age", str(max_age)).returncode == 0) != fresh:
        assert time.monotonic() < deadline, f"{path} never became {'fresh' if fresh else 'stale'}"
        time.sleep(0.2)  # polling pace; the deadline bounds the wait


def test_front_check_is_a_round_trip_with_an_optional_worker_floor(
    start_server: StartServer, sqlite_url: str, tmp_path: Path
) -> None:
    alive = tmp_path / "front.health"
    # The ping itself needs cleartext player ports (the checker has no CURVE): see below.
    server = start_server(sqlite_url, 1, "--health-file", str(alive), "--insecure-players")
    done = check("front", server.actions)
    assert done.returncode == 0 and "pong" in done.stdout
    assert check("front", server.actions, "--min-workers", "1", "-q").returncode == 0
    short = check("front", server.actions, "--min-workers", "3")
    assert short.returncode == 1 and "fewer than 3" in short.stderr
    # The updates port is an XPUB: it speaks ZMTP but never answers a request.
    assert check("front", server.updates, "--timeout", "0.5").returncode == 1
    wait_file(alive, fresh=True)  # `crossroads serve` keeps its own liveness file
    server.kill_all()
    assert "cannot connect" in check("front", server.actions).stderr
    wait_file(alive, fresh=False)


def test_a_secure_front_is_checked_on_its_key_announcement(
    start_server: StartServer, sqlite_url: str
) -> None:
    server = start_server(sqlite_url, 1)  # the default: CURVE player ports
    assert server.key_endpoint is not None
    done = check("key", server.key_endpoint)
    assert done.returncode == 0 and "key announced" in done.stdout, done.stderr
    # The pong (and its worker count) is sealed: the checker says what to use instead.
    sealed = check("front", server.actions, "--min-workers", "1")
    assert sealed.returncode == 1 and "crossroads ping" in sealed.stderr
    assert check("key", server.updates, "--timeout", "0.5").returncode == 1


def test_the_front_check_on_a_curve_port_asks_the_announcement_below_it(
    start_server: StartServer, sqlite_url: str
) -> None:
    """What the compose file's front check needs: 7301 is sealed, 7300 answers."""
    port = unused_port(with_port_below=True)
    server = start_server(sqlite_url, 1, "--actions-bind", f"tcp://127.0.0.1:{port}")
    assert server.key_endpoint == f"tcp://127.0.0.1:{port - 1}"
    done = check("front", server.actions)
    assert done.returncode == 0 and "CURVE; key announced" in done.stdout, done.stderr


def test_worker_liveness_file_is_fresh_only_while_it_hears_the_front(
    start_server: StartServer, sqlite_url: str, tmp_path: Path
) -> None:
    server = start_server(sqlite_url, 0)
    backend = server.wait_for(r"^workers (\S+)")[1]
    alive = tmp_path / "worker.health"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), CROSSROADS_HEALTH_FILE=str(alive))
    env["CROSSROADS_KEYS_DIR"] = str(server.log_path.parent / "keys")  # the front's, as made
    with (tmp_path / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "worker", "--front", backend],
            env={**env, "CROSSROADS_STORE": sqlite_url},
            stdout=log,
            stderr=log,
        )
    try:
        wait_file(alive, fresh=True)
        assert check("file", env={health.HEALTH_FILE_ENV: str(alive)}).returncode == 0
        server.kill_all()  # the worker lives on, cut off: no longer healthy
        wait_file(alive, fresh=False)
        assert worker.poll() is None
    finally:
        worker.kill()
        worker.wait(WAIT)


def test_crossroads_ping_names_the_front_as_play_and_status_do(
    start_server: StartServer, sqlite_url: str
) -> None:
    """`--server`, as `play`, `status` and `loadtest` spell it, and `--front`, as deployments
    already do; each a real round trip over CURVE with the key asked of the announcement."""
    server = start_server(sqlite_url, 1)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    for flag in ("--server", "--front"):
        done = subprocess.run(
            [sys.executable, "-m", "crossroads", "ping", flag, server.actions, *server.key_args()],
            capture_output=True,
            text=True,
            timeout=WAIT,
            env=env,
            check=False,
        )
        assert done.returncode == 0 and "pong from" in done.stdout, (flag, done.stderr)
