"""The operator's view against a real server: `crossroads admin grant/status/announce/kick/ban/
unban/maintenance` as separate processes, players as real client sessions. Ordinary players can
use none of it, in the game or through the shell."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

import pytest
from logkit import wait_log_line
from serverkit import REPO_ROOT, WAIT, Server, StartServer, read_state, run

from client.session import GameSession, RequestRefused
from gameserver.moderation import ban_of, is_admin, maintenance

ADMIN, ADMIN_PASSWORD = "Olga", "olga-operates-9"
ADMIN_COMMANDS = ["announce hello", "kick Alice", "ban Alice", "unban Alice", "maintenance on 1pm"]


def admin_cli(*args: str, password: str | None = ADMIN_PASSWORD) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSROADS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if password is not None:
        env["CROSSROADS_ADMIN_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "crossroads", "admin", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=WAIT,
        cwd=REPO_ROOT,
    )


def at(server: Server) -> list[str]:
    return server.client_args()


def one_line_error(done: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], done.stderr
    assert "Traceback" not in done.stderr


async def logged_in(server: Server, name: str, password: str | None = None) -> GameSession:
    session = server.session(timeout=5.0)
    await session.login(name, password or f"{name.lower()}-password")
    return session


def test_admin_commands_against_a_real_server(start_server: StartServer, sqlite_url: str) -> None:
    server = start_server(sqlite_url, 2)

    async def create_admin_account() -> None:
        olga = await logged_in(server, ADMIN, ADMIN_PASSWORD)
        await olga.act("quit")
        await olga.close()

    run(create_admin_account())
    one_line_error(admin_cli("grant", "Nobody", "--store", sqlite_url), 1, "no account named")
    done = admin_cli("grant", ADMIN, "--store", sqlite_url)
    assert done.returncode == 0 and done.stdout.strip() == "Olga is now an admin."
    assert read_state(sqlite_url, lambda s: is_admin(s, "olga"))

    async def scenario() -> None:
        alice, bob = await logged_in(server, "Alice"), await logged_in(server, "Bob")
        try:
            # An ordinary player: every admin command is refused, in the game...
            for line in ADMIN_COMMANDS:
                reply = await bob.act(line)
                assert not reply.ok and "Only admins may use" in reply.text, line
            # ...and through the shell, with a player's own (valid) credentials.
            carol = await logged_in(server, "Carol", "carol-pw-1")
            await carol.close()
            done = await _cli("kick", "Alice", "--as", "Carol", *at(server), password="carol-pw-1")
            one_line_error(done, 1, "Only admins may use 'kick'.")
            # A name nobody has is refused, and not registered with the password given.
            done = await _cli("kick", "Alice", "--as", "Dora", *at(server), password="dora-pw-1")
            one_line_error(done, 1, "cannot log in as Dora: no_account: No account is called")
            assert read_state(sqlite_url, lambda s: s.player("dora")) is None
            assert (await alice.act("look")).ok  # nothing happened to Alice

            done = await _cli(
                "announce", "Server", "restarts", "at", "noon", "--as", ADMIN, *at(server)
            )
            assert done.returncode == 0, done.stderr
            event = await bob.wait_for(lambda e: e.kind == "announce", WAIT)
            assert event.text == "[Announcement] Server restarts at noon"

            done = await _cli("kick", "Bob", "being", "rude", "--as", ADMIN, *at(server))
            assert done.returncode == 0 and done.stdout.strip() == "Kicked Bob.", done.stderr
            with pytest.raises(RequestRefused, match="unauthorized"):
                await bob.act("look")
            await bob.close()
            bob = await logged_in(server, "Bob")  # a kick is no ban

            done = await _cli("ban", "Bob", "spamming", "--as", ADMIN, *at(server))
            assert done.returncode == 0 and done.stdout.strip() == "Banned Bob.", done.stderr
            with pytest.raises(RequestRefused, match="unauthorized"):
                await bob.act("look")
            await bob.close()
            with pytest.raises(RequestRefused, match="You are banned from this game: spamming"):
                await logged_in(server, "Bob")
            assert read_state(sqlite_url, lambda s: ban_of(s, "bob")).reason == "spamming"
            done = await _cli("unban", "Bob", "--as", ADMIN, *at(server))
            assert done.returncode == 0 and done.stdout.strip() == "Unbanned Bob."
            bob = await logged_in(server, "Bob")

            done = await _cli(
                "maintenance", "on", "--until", "14:00 UTC", "--message", "New rooms.",
                "--as", ADMIN, *at(server),
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "2 player(s) sent away" in done.stdout  # Alice and Bob
            for player in (alice, bob):
                with pytest.raises(RequestRefused, match="unauthorized"):
                    await player.act("look")
            closed = "closed for maintenance until 14:00 UTC. New rooms."
            with pytest.raises(RequestRefused, match=closed) as refused:
                await logged_in(server, "Alice")
            # Refused at once: a retryable code had the client retry for 15 s, until the
            # login budget answered "rate limited" instead.
            assert refused.value.code == "forbidden"
            olga = await logged_in(server, ADMIN, ADMIN_PASSWORD)  # admins still get in
            assert (await olga.act("maintenance")).text.startswith("Maintenance until 14:00 UTC")
            await olga.act("quit")
            await olga.close()

            done = await _cli(
                "status",
                "--server",
                server.actions,
                *server.key_args(),
                "--store",
                sqlite_url,
                "--json",
            )
            assert done.returncode == 0, done.stderr
            status = json.loads(done.stdout)
            assert status["workers"] == 2 and status["players_online"] == 0
            assert status["maintenance"]["until"] == "14:00 UTC"
            assert status["queue_depth"] == 0 and status["jobs_per_s"] >= 0

            done = await _cli("maintenance", "off", "--as", ADMIN, *at(server))
            assert done.returncode == 0, done.stderr
            assert read_state(sqlite_url, maintenance) is None
            alice = await logged_in(server, "Alice")
            assert (await alice.act("look")).ok
        finally:
            await alice.close()
            await bob.close()

    run(scenario(), timeout=180)


async def _cli(*args: str, password: str = ADMIN_PASSWORD) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(admin_cli, *args, password=password)


def test_status_shows_each_workers_jobs_per_second(
    start_server: StartServer, sqlite_url: str
) -> None:
    server = start_server(sqlite_url, 1, "--metrics-bind", "127.0.0.1:0")
    metrics = wait_log_line(server.log_path, r"worker\[w1\.\S+\] INFO \S+: metrics on (\S+)")[1]
    args = ["status", "--server", server.actions, *server.key_args(), "--store", sqlite_url]
    args += ["--worker-metrics", metrics, "--interval", "2"]

    async def busy_while_status_runs() -> subprocess.CompletedProcess:
        alice = await logged_in(server, "Alice")
        status = asyncio.create_task(asyncio.to_thread(admin_cli, *args))
        # Actions all through the two readings, at a player's pace: the session's own limit
        # (20 requests/s) would rate-limit a tight loop, and a backing-off client may then send
        # nothing for the whole interval. Pacing, not synchronisation: the wait is on `status`.
        while not status.done():
            assert (await alice.act("look")).ok
            await asyncio.sleep(0.1)
        await alice.close()
        return await status

    done = run(busy_while_status_runs())
    assert done.returncode == 0, done.stderr
    assert "players      1 online" in done.stdout
    assert "workers      1 (" in done.stdout and "maintenance  off" in done.stdout
    rate = re.search(r"^worker       w1\.\S+: ([\d.]+) jobs/s$", done.stdout, re.M)
    assert rate and float(rate[1]) > 0, done.stdout


@pytest.mark.parametrize(
    "action", ["grant", "status", "announce", "kick", "ban", "unban", "maintenance", None]
)
def test_every_subcommand_has_help(action: str | None) -> None:
    done = admin_cli(*([action] if action else []), "--help")
    assert done.returncode == 0 and "usage: crossroads admin" in done.stdout


def test_usage_and_reach_errors_are_one_line() -> None:
    dead = ["--server", "tcp://127.0.0.1:9", "--updates", "tcp://127.0.0.1:9"]
    one_line_error(
        admin_cli("announce", "hi", "--as", ADMIN, *dead, "--timeout", "0.5"),
        1,
        "the server at tcp://127.0.0.1:9 does not answer",
    )
    one_line_error(admin_cli("kick", "Bob", *dead), 1, "which admin account? --as NAME")
    one_line_error(
        admin_cli("ban", "Bob", "--as", ADMIN, *dead, password=None),
        1,
        "no password: set CROSSROADS_ADMIN_PASSWORD",
    )
    one_line_error(
        admin_cli("maintenance", "on", "--as", ADMIN, *dead), 1, "maintenance on needs --until"
    )
    one_line_error(
        admin_cli("status", "--server", "tcp://127.0.0.1:9", "--interval", "0"),
        1,
        "does not answer",
    )


def test_crossroads_status_is_admin_status() -> None:
    """`crossroads status` is the shorthand the operator reaches for first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSROADS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    top = [sys.executable, "-m", "crossroads", "status"]
    helped = subprocess.run([*top, "--help"], capture_output=True, text=True, env=env, timeout=WAIT)
    assert helped.returncode == 0 and "--worker-metrics" in helped.stdout
    # It answers under the name the operator typed, not as `crossroads admin status`.
    assert helped.stdout.startswith("usage: crossroads status [-h]"), helped.stdout
    dead = ["--server", "tcp://127.0.0.1:9", "--interval", "0"]
    done = subprocess.run([*top, *dead], capture_output=True, text=True, env=env, timeout=WAIT)
    one_line_error(done, 1, "does not answer")
    assert done.stderr.startswith("crossroads status: the front at"), done.stderr
    wrong = subprocess.run([*top, "--bogus"], capture_output=True, text=True, env=env, timeout=WAIT)
    assert (
        wrong.returncode == 2
        and "crossroads status: error: unrecognized arguments: --bogus" in wrong.stderr
    )
    assert "crossroads admin" not in wrong.stderr, wrong.stderr
