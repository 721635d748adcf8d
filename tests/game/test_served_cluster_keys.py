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

from serverkit import REPO_ROOT, WAIT, Server

import engine
from engine.auth import load_certificate
from engine.patterns.paranoid_pirate import PPP_READY
from engine.utils.monitor import recv_monitor_message
from gameserver.protocol import LoginReply

PASSWORD = "alice-secret-password"


def _attacker(context: engine.Context, endpoint: str, keys: tuple[bytes, bytes] | None, front):
    sock = context.socket(engine.DEALER)
    sock.linger = 0
    if keys is not None:
        sock.curve_serverkey = front
        sock.curve_publickey, sock.curve_secretkey = keys
    monitor = sock.get_monitor_socket()
    sock.connect(endpoint)
    sock.send_multipart([PPP_READY])
    return sock, monitor


def _events(monitor: engine.Socket, until: float) -> set[int]:
    seen: set[int] = set()
    while time.monotonic() < until:
        if monitor.poll(100):
            seen.add(recv_monitor_message(monitor)["event"])
    return seen


def test_keyless_and_unknown_workers_get_no_job(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 1)
    workers = server.wait_for(r"^workers (\S+)")[1]
    assert workers.startswith("tcp://127.0.0.1:")
    keys_dir = server.log_path.parent / "keys"
    front_public, _ = load_certificate(keys_dir / "front.key")
    assert server.wait_for(r"^front public key (\S+)")[1] == front_public.decode()

    context = engine.Context()
    try:
        nokey, nokey_monitor = _attacker(context, workers, None, front_public)
        stranger, stranger_monitor = _attacker(
            context, workers, engine.curve_keypair(), front_public
        )
        # The player plays while the attackers wait for work.
        with server.sync_session() as alice:
            reply = alice.login("Alice", PASSWORD)
            assert isinstance(reply, LoginReply)
            for _ in range(5):
                alice.act("look")
        deadline = time.monotonic() + 2.0
        stranger_events = _events(stranger_monitor, deadline)
        assert engine.EVENT_HANDSHAKE_FAILED_AUTH in stranger_events
        assert engine.EVENT_HANDSHAKE_SUCCEEDED not in stranger_events
        nokey_events = _events(nokey_monitor, time.monotonic() + 0.2)
        assert engine.EVENT_HANDSHAKE_SUCCEEDED not in nokey_events
        for sock in (nokey, stranger):
            assert not sock.poll(0), "an unadmitted worker received something"
    finally:
        context.destroy(linger=0)
    health = server.ping()
    assert health["refused_keys"] >= 1
    assert health["workers"] == 1
    log = server.log_path.read_text()
    assert "refused a crossroads-workers connection" in log
    assert PASSWORD not in log


def test_a_worker_admitted_with_keys_worker_joins(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 0)
    workers = server.wait_for(r"^workers (\S+)")[1]
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
        while "no word from the front" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert "allow-list" in log_path.read_text()
        assert server.ping()["workers"] == 0
        assert "refused a crossroads-workers connection" in server.log_path.read_text()
    finally:
        stranger.kill()
        stranger.wait(WAIT)
