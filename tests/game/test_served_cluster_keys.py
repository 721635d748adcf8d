"""The worker port admits only keys on the allow-list (issue 14's first attack, re-run).

A real `crossroads serve`; attackers connect to its worker port as Paranoid Pirate workers,
one without keys (NULL) and one with a CURVE key the front does not know. A player logs in and
plays meanwhile: the attackers get no job and no byte, the refusal is logged and counted, and
the monitor shows it. A worker whose key is added with `crossroads keys worker` does join.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from serverkit import (
    PLAYER_PASSWORD,
    REPO_ROOT,
    WAIT,
    Server,
    intruding_worker,
    play_while_intruders_wait,
)

import engine
from engine.auth import load_certificate
from gameserver.protocol import LoginReply


def test_keyless_and_unknown_workers_get_no_job(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 1)
    workers = server.wait_for(r"^workers (\S+)")[1]
    assert workers.startswith("tcp://127.0.0.1:")
    keys_dir = server.log_path.parent / "keys"
    front_public, _ = load_certificate(keys_dir / "front.key")
    assert server.wait_for(r"^front public key (\S+)")[1] == front_public.decode()

    context = engine.Context()
    try:
        nokey, nokey_monitor = intruding_worker(context, workers)
        public, secret = engine.curve_keypair()
        stranger, stranger_monitor = intruding_worker(
            context,
            workers,
            curve_serverkey=front_public,
            curve_publickey=public,
            curve_secretkey=secret,
        )
        play_while_intruders_wait(server, (nokey, nokey_monitor), (stranger, stranger_monitor))
    finally:
        context.destroy(linger=0)
    assert server.ping()["workers"] == 1
    log = server.log_path.read_text()
    assert "refused a crossroads-workers connection" in log
    assert PLAYER_PASSWORD not in log


def test_a_worker_admitted_with_keys_worker_joins(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 0)
    workers = server.wait_for(r"^workers (\S+)")[1]
    # With no local worker, serve says what its actions wait for.
    assert server.wait_for(rf"^no local workers \(--workers 0\): .*--front {workers}` to join")
    keys_dir = server.log_path.parent / "keys"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    made = subprocess.run(
        [sys.executable, "-m", "crossroads", "keys", "--keys-dir", str(keys_dir), "worker", "far"],
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT,
    )
    assert made.returncode == 0, made.stderr
    remote = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crossroads",
            "worker",
            "--front",
            workers,
            "--store",
            sqlite_url,
            "--front-key",
            str(keys_dir / "front.key"),
            "--worker-key",
            str(keys_dir / "far.key_secret"),
            "--keys-dir",
            str(server.log_path.parent / "elsewhere"),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + WAIT
        while server.ping()["workers"] < 1:
            assert time.monotonic() < deadline, "the admitted worker never joined"
            time.sleep(0.1)
        with server.sync_session() as bob:
            assert isinstance(bob.login("Bob", "bob-password"), LoginReply)
    finally:
        remote.kill()
        remote.wait(WAIT)


def test_worker_without_keys_says_what_to_do(tmp_path: Path) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'g.db'}"]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crossroads",
            "worker",
            "--keys-dir",
            str(tmp_path / "none"),
            *store,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "no front key" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_name_that_cannot_start_a_routing_id_is_refused(tmp_path: Path) -> None:
    """A 300-character --name made a routing id over 255 bytes: a traceback at connect."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    for name in ("x" * 300, "two words"):
        done = subprocess.run(
            [sys.executable, "-m", "crossroads", "worker", "--name", name],
            capture_output=True,
            text=True,
            env=env,
            timeout=WAIT,
            cwd=tmp_path,
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "argument --name: " in done.stderr.splitlines()[-1]


def test_insecure_workers_is_explicit_and_loud(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 1, "--insecure-workers")
    assert server.wait_for(r"^workers \S+  .*ANY process")
    assert server.ping()["workers"] == 1  # its keyless local worker joined (players: CURVE)
    assert "ANY process that reaches" in server.log_path.read_text()


def test_insecure_players_is_explicit_and_loud(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 1, "--insecure-players", "--insecure-workers")
    assert server.wait_for(r"^players CLEARTEXT \(--insecure-players\)")
    assert server.key_endpoint is None and server.key is None  # nothing announced
    assert not any(line.startswith("front public key") for line in server.lines)
    assert server.ping()["workers"] == 1  # a plaintext ping is answered
    assert "speak CLEARTEXT" in server.log_path.read_text()


def test_a_worker_with_an_unknown_key_is_told_why_it_hears_nothing(
    start_server, sqlite_url: str, tmp_path: Path
) -> None:
    server: Server = start_server(sqlite_url, 0)
    workers = server.wait_for(r"^workers (\S+)")[1]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    other = tmp_path / "other-keys"  # a pair the front never admitted
    made = subprocess.run(
        [sys.executable, "-m", "crossroads", "keys", "--keys-dir", str(other), "init"],
        capture_output=True,
        env=env,
        timeout=WAIT,
    )
    assert made.returncode == 0
    log_path = tmp_path / "stranger.log"
    front_key = str(server.log_path.parent / "keys" / "front.key")
    args = ["--front", workers, "--store", sqlite_url, "--keys-dir", str(other)]
    with log_path.open("wb") as log:
        stranger = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "worker", *args, f"--front-key={front_key}"],
            env=env,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + WAIT
        # Told from the refused handshake itself: it used to be "no word from the front after
        # 10s", a guess among causes.
        told = f"the front at {workers} refused this worker's key (ZAP status 400)"
        while told not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert "allow-list" in log_path.read_text()
        assert server.ping()["workers"] == 0
        assert "refused a crossroads-workers connection" in server.log_path.read_text()
    finally:
        stranger.kill()
        stranger.wait(WAIT)


def test_a_broken_allow_list_file_is_told_at_start(
    start_server, sqlite_url: str, tmp_path: Path
) -> None:
    # One unreadable file shuts every remote worker out (fail closed); the front said so only
    # when the first remote worker knocked.
    workers_dir = tmp_path / "keys" / "workers"
    workers_dir.mkdir(parents=True)
    (workers_dir / "mangled.key").write_text("not a certificate\n")
    server: Server = start_server(sqlite_url, 1)
    assert server.wait_for(r"^ready")
    log = server.log_path.read_text()
    assert f"worker allow-list {workers_dir}: no public key in" in log
    assert "admitting no worker" in log


def _worker_log_until(args: list[str], log_path: Path, told: str, env: dict[str, str]) -> str:
    """Run `crossroads worker ARGS` until its log says `told`; the log (it must come well
    before the 10 s "no word from the front" guess)."""
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "worker", *args], env=env, stderr=log
        )
    try:
        deadline = time.monotonic() + WAIT
        while told not in log_path.read_text():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        return log_path.read_text()
    finally:
        worker.kill()
        worker.wait(WAIT)


def test_a_worker_with_the_wrong_front_key_is_told(
    start_server, sqlite_url: str, tmp_path: Path
) -> None:
    """An admitted worker key but --front-key another front's: the front cannot open the
    HELLO and closes without a word. The worker used to hear nothing and guess after 10 s."""
    server: Server = start_server(sqlite_url, 0)
    workers = server.wait_for(r"^workers (\S+)")[1]
    keys_dir = server.log_path.parent / "keys"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    for made in (
        [sys.executable, "-m", "crossroads", "keys", "--keys-dir", str(keys_dir), "worker", "far"],
        [sys.executable, "-m", "crossroads", "keys", "--keys-dir", str(tmp_path / "o"), "init"],
    ):
        assert subprocess.run(made, capture_output=True, env=env, timeout=WAIT).returncode == 0
    args = ["--front", workers, "--store", sqlite_url, "--keys-dir", str(tmp_path / "w")]
    args += ["--worker-key", str(keys_dir / "far.key_secret")]
    args += [f"--front-key={tmp_path / 'o' / 'front.key'}"]
    told = f"the front at {workers} ended this worker's handshake 2 times before it finished"
    log = _worker_log_until(args, tmp_path / "w.log", told, env)
    assert "is --front-key the front's public key?" in log
    assert "refused this worker's key" not in log and "no word from the front" not in log
    assert server.ping()["workers"] == 0


def test_a_curve_worker_at_an_insecure_front_is_told(
    start_server, sqlite_url: str, tmp_path: Path
) -> None:
    server: Server = start_server(sqlite_url, 0, "--insecure-workers")
    workers = server.wait_for(r"^workers (\S+)")[1]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    made = [sys.executable, "-m", "crossroads", "keys", "--keys-dir", str(tmp_path / "o"), "init"]
    assert subprocess.run(made, capture_output=True, env=env, timeout=WAIT).returncode == 0
    args = ["--front", workers, "--store", sqlite_url, "--keys-dir", str(tmp_path / "o")]
    args += [f"--front-key={tmp_path / 'o' / 'front.key'}"]
    told = f"the front at {workers} does not take CURVE workers"
    assert "--insecure-workers" in _worker_log_until(args, tmp_path / "w.log", told, env)
