"""Serve's own workers join over a private Unix socket, by a secret of the run (local_workers.py).

A real `crossroads serve`: its workers connect to the local port (not the TCP one), the secret
is in their environment and on no command line, the directory is its user's alone, and a
process without the secret (no credentials, or a wrong password) gets no job and is counted
as refused. A graceful stop removes the directory.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from serverkit import Server, intruding_worker, play_while_intruders_wait

import engine
from gameserver.local_workers import LOCAL_USER

SECRET_ENV = b"CROSSROADS_LOCAL_WORKER_SECRET="


def _proc(pid: int, name: str) -> list[bytes]:
    return Path(f"/proc/{pid}/{name}").read_bytes().split(b"\0")


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
        keyless, keyless_monitor = intruding_worker(context, endpoint)
        guesser, guesser_monitor = intruding_worker(
            context, endpoint, plain_username=LOCAL_USER.encode(), plain_password=b"not-it"
        )
        play_while_intruders_wait(server, (keyless, keyless_monitor), (guesser, guesser_monitor))
    finally:
        context.destroy(linger=0)
    assert server.ping()["workers"] == 1  # the local worker, which played meanwhile

    assert server.stop() == 0
    assert not directory.exists()
    assert any(re.match(r"^stopped:", line) for line in server.lines)
