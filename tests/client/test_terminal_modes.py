"""`crossroads play` as a process: `--script FILE` and lines on a non-TTY stdin, against a real
server. Processes are killed by PID at teardown."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clientservers import Servers
from serverkit import REPO_ROOT, WAIT, Server

from loadtest.ports import unused_port


class Play:
    """One `python -m crossroads play` process; its stdout lines collected on a thread."""

    def __init__(self, server: Server, name: str, xdg: Path, *extra: str) -> None:
        env = dict(os.environ, CROSSROADS_PASSWORD=f"{name}-password", XDG_DATA_HOME=str(xdg))
        env["PYTHONPATH"] = str(REPO_ROOT)
        args = ["--name", name, "--server", server.actions, "--updates", server.updates]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "play", *args, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"never printed {text!r}: {self.lines}")
                self._changed.wait(min(left, 0.5))

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self) -> int:
        """Close stdin (EOF) and wait for the exit code."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(WAIT)
        self._reader.join(WAIT)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # by PID
            self.process.wait(WAIT)


@pytest.fixture
def plays() -> Iterator[list[Play]]:
    started: list[Play] = []
    yield started
    for play in started:
        play.kill()


def test_script_and_stdin_modes(
    servers: Servers, plays: list[Play], tmp_path: Path, xdg: Path
) -> None:
    server = servers.start()
    bob = Play(server, "Bob", xdg)
    plays.append(bob)
    bob.wait_for("Exits: north, south, east, west")  # logged in: the room is described

    script = tmp_path / "alice.txt"
    script.write_text("# a comment\nsay hello from the script\n\ntake lamp\ninventory\n")
    alice = Play(server, "Alice", xdg, "--script", str(script))
    plays.append(alice)
    assert alice.finish() == 0
    assert 'You say, "hello from the script"' in alice.lines
    assert "You are carrying a brass lamp." in alice.lines
    assert alice.lines[-1] == "Goodbye, Alice. Your progress is saved."  # left at the end

    bob.wait_for('Alice says, "hello from the script"')
    bob.wait_for("Alice takes the brass lamp.")
    bob.send("look")
    bob.wait_for("You see a weathered signpost.")  # the lamp is gone
    bob.send("frobnicate")
    bob.wait_for("Unknown command 'frobnicate'")
    assert bob.finish() == 0
    assert bob.lines[-1] == "Goodbye, Bob. Your progress is saved."
    assert not any("\x1b[" in line for line in bob.lines)  # plain text when not a terminal


def test_wrong_password_and_no_server(
    servers: Servers, plays: list[Play], xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = servers.start()
    first = Play(server, "Carol", xdg)
    plays.append(first)
    first.wait_for("Exits:")
    assert first.finish() == 0

    def play(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "crossroads", "play", "--name", "Carol", *args]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=WAIT,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
        )

    monkeypatch.setenv("CROSSROADS_PASSWORD", "not-carols")
    wrong = play("--server", server.actions, "--updates", server.updates)
    assert wrong.returncode == 1 and "login refused" in wrong.stdout
    port = unused_port()
    nobody = f"tcp://127.0.0.1:{port}"
    away = play("--server", nobody, "--updates", nobody, "--timeout", "0.3")
    assert away.returncode == 1 and "the server does not answer" in away.stdout
    # No key could be learnt: the warning says where it was looked for.
    assert f"no key announced at tcp://127.0.0.1:{port - 1}: talking in clear" in away.stderr
    monkeypatch.delenv("CROSSROADS_PASSWORD")
    missing = play("--server", nobody, "--updates", nobody)
    assert missing.returncode == 2 and "no password" in missing.stderr


def test_mistakes_in_plays_arguments_get_one_line(tmp_path: Path) -> None:
    """Each mistake: exit status 2, one line on stderr, no traceback, no password shown."""
    server = "tcp://127.0.0.1:9"  # never reached: every mistake is caught before connecting
    script = tmp_path / "script.txt"
    script.write_text("look\n")
    short = tmp_path / "short"
    short.write_text("zq7\n")
    binary = tmp_path / "binary"
    binary.write_bytes(b"look\n\xb1\x87zq7\n")  # these used to end in a traceback
    cases = {
        "a --server without tcp://": ["--name", "erin", "--server", "127.0.0.1:7301"],
        "a bad --updates": ["--name", "erin", "--server", server, "--updates", "nowhere"],
        "a missing --password-file": ["--name", "erin", "--password-file", "/nonexistent/pw"],
        "a missing --script": ["--name", "erin", "--script", str(tmp_path / "absent.txt")],
        "a bad name": ["--name", "9lives", "--script", str(script)],
        "a short password": ["--name", "erin", "--password-file", str(short)],
        "a binary --script": ["--name", "erin", "--script", str(binary)],
        "a binary --password-file": ["--name", "erin", "--password-file", str(binary)],
        "a directory as --script": ["--name", "erin", "--script", str(tmp_path)],
    }
    expected = {
        "a --server without tcp://": "--server '127.0.0.1:7301' is not an endpoint",
        "a bad --updates": "--updates 'nowhere' is not an endpoint",
        "a missing --password-file": "--password-file '/nonexistent/pw': no such file",
        "a missing --script": "absent.txt': no such file",
        "a bad name": "--name '9lives' cannot be used: a name is 2 to 20 letters",
        "a short password": "that password cannot be used: a password is 4 to 128 characters",
        "a binary --script": "binary' is not UTF-8 text (byte 0xb1 at offset 5)",
        "a binary --password-file": "binary' is not UTF-8 text (byte 0xb1 at offset 5)",
        "a directory as --script": "' is a directory, not a file",
    }
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), CROSSROADS_PASSWORD="long-enough-pw")
    for what, args in cases.items():
        done = subprocess.run(
            [sys.executable, "-m", "crossroads", "play", "--server", server, *args],
            capture_output=True,
            text=True,
            timeout=WAIT,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 2, (what, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expected[what] in lines[0], (what, done.stderr)
        assert lines[0].startswith("crossroads play: ")
        assert "zq7" not in done.stdout + done.stderr and "long-enough-pw" not in done.stderr


def test_the_new_commands_through_the_client(
    servers: Servers, plays: list[Play], tmp_path: Path, xdg: Path
) -> None:
    """A page to an offline player arrives at their next login; the other commands as a
    player types them, read back from the client's plain output."""
    server = servers.start()
    bob = Play(server, "bob", xdg)
    plays.append(bob)
    bob.wait_for("Exits:")
    assert bob.finish() == 0  # bob exists, and is offline

    script = tmp_path / "alice.txt"
    script.write_text(
        "say " + "z" * 600 + "\n"  # refused in one line; the script goes on
        "page bob see you at the inn\n"
        "pose stretches\n"
        "emote With a yawn, /me sits.\n"
        "take all\n"
        "drop all\n"
        "nick hi = say hello there\n"
        "hi friend\n"
        "setdesc A traveller in a dusty coat.\n"
        "north\n"
        "sethome\n"
        "south\n"
        "home\n"
        "time\n"
        "ooc anyone about?\n"
        "help page\n"
    )
    alice = Play(server, "alice", xdg, "--script", str(script))
    plays.append(alice)
    assert alice.finish() == 0
    out = "\n".join(alice.lines)
    assert "Traceback" not in out
    for expected in (
        "That line is 604 characters long; the longest line is 500. Nothing was sent.",
        "bob is away; they will get your page at their next login",
        "alice stretches.",
        "With a yawn, alice sits.",
        "You take the brass lamp.",
        "You drop the brass lamp.",
        'You say, "hello there friend"',
        "Others now see: A traveller in a dusty coat.",
        "North Road is your home now",
        "[ooc] alice: anyone about?",
        "Send a message to a player anywhere in the world, even offline.",
    ):
        assert expected in out, (expected, out)
    assert re.search(r"^It is \w+; \w+ comes in about \d+ minute\(s\)\.$", out, re.M), out
    assert out.count("North Road") >= 2  # walked there, then went home there

    back = Play(server, "bob", xdg)
    plays.append(back)
    back.wait_for('alice pages you, "see you at the inn" (while you were away)')
    assert back.finish() == 0
