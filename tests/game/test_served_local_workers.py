"""Serve's own workers join over a private Unix socket, by a secret of the run (local_workers.py).

A real `crossroads serve`: its workers connect to the local port (not the TCP one), the secret
is in their environment and on no command line, the directory is its user's alone, and a
process without the secret (no credentials, or a wrong password) gets no job and is counted
as refused. A graceful stop removes the directory.
"""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path

from serverkit import Server

import engine
from engine.patterns.paranoid_pirate import PPP_READY
from engine.utils.monitor import recv_monitor_message
from gameserver.local_workers import LOCAL_USER
from gameserver.protocol import LoginReply

SECRET_ENV = b"CROSSROADS_LOCAL_WORKER_SECRET="


def _proc(pid: int, name: str) -> list[bytes]:
    return Path(f"/proc/{pid}/{name}").read_bytes().split(b"\0")


def _intruder(context: engine.Context, endpoint: str, password: bytes | None):
    sock = context.socket(engine.DEALER)
    sock.linger = 0
    if password is not None:
        sock.plain_username = LOCAL_USER.encode()
        sock.plain_password = password
    monitor = sock.get_monitor_socket()
    sock.connect(endpoint)
    sock.send_multipart([PPP_READY])
    return sock, monitor


def _handshake_ends(monitor: engine.Socket, deadline: float) -> set[int]:
    """Monitor events until the handshake has failed or succeeded (or the deadline)."""
    ends = {engine.EVENT_HANDSHAKE_SUCCEEDED, engine.EVENT_HANDSHAKE_FAILED_AUTH}
    ends |= {engine.EVENT_HANDSHAKE_FAILED_PROTOCOL, engine.EVENT_HANDSHAKE_FAILED_NO_DETAIL}
    seen: set[int] = set()
    while time.monotonic() < deadline and not seen & ends:
        if monitor.poll(100):
            seen.add(recv_monitor_message(monitor)["event"])
    return seen


def test_own_workers_join_the_private_port_by_the_run_secret(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 1)
    local = server.wait_for(r"^local (ipc://(\S+)/workers)")
    endpoint, directory = local[1], Path(local[2])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert directory.stat().st_uid == Path("/proc/self").stat().st_uid

    (pid,) = server.worker_pids
    command = _proc(pid, "cmdline")
    assert command[command.index(b"--front") + 1].decode() == endpoint
    secrets = [v[len(SECRET_ENV) :] for v in _proc(pid, "environ") if v.startswith(SECRET_ENV)]
    assert len(secrets) == 1 and len(secrets[0]) >= 32
    assert not any(secrets[0] in arg for arg in command)

    context = engine.Context()
    try:
        keyless, keyless_monitor = _intruder(context, endpoint, None)
        guesser, guesser_monitor = _intruder(context, endpoint, b"not-the-secret")
        with server.sync_session() as alice:  # played by the local worker meanwhile
            assert isinstance(alice.login("Alice", "alice-secret-password"), LoginReply)
            for _ in range(3):
                alice.act("look")
        deadline = time.monotonic() + 10.0
        guesser_events = _handshake_ends(guesser_monitor, deadline)
        assert engine.EVENT_HANDSHAKE_FAILED_AUTH in guesser_events
        assert engine.EVENT_HANDSHAKE_SUCCEEDED not in guesser_events
        keyless_events = _handshake_ends(keyless_monitor, deadline)
        assert engine.EVENT_HANDSHAKE_SUCCEEDED not in keyless_events
        assert keyless_events, "the keyless peer's handshake never ended"
        for sock in (keyless, guesser):
            assert not sock.poll(0), "a peer without the secret received something"
    finally:
        context.destroy(linger=0)
    health = server.ping()
    assert health["refused_keys"] >= 1
    assert health["workers"] == 1

    assert server.stop() == 0
    assert not directory.exists()
    assert any(re.match(r"^stopped:", line) for line in server.lines)
