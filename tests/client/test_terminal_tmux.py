"""Smoke test in a real terminal: two `crossroads play` clients in tmux panes, typed at with
send-keys and read with capture-pane. Skipped when tmux is not installed."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clientservers import Servers
from serverkit import REPO_ROOT, WAIT

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Tmux:
    """A private tmux server (own socket); its panes and itself are killed by PID."""

    def __init__(self, tmp_path: Path) -> None:
        self.socket = str(tmp_path / "tmux.sock")
        self.pids: list[int] = []

    def __call__(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run([TMUX, "-S", self.socket, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def remember_pids(self) -> None:
        self.pids.append(int(self("display-message", "-p", "#{pid}").strip()))
        self.pids += [int(p) for p in self("list-panes", "-a", "-F", "#{pane_pid}").split()]

    def screen(self, pane: str) -> str:
        return self("capture-pane", "-p", "-t", pane)

    def wait_for(self, pane: str, text: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(pane)
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"pane {pane} never showed {text!r}:\n{screen}")
            time.sleep(0.05)

    def kill(self) -> None:
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmp_path)
    yield session
    session.kill()


def test_two_clients_in_tmux(servers: Servers, tmux: Tmux, tmp_path: Path) -> None:
    server = servers.start()

    def command(name: str) -> str:
        env = {
            "PYTHONPATH": str(REPO_ROOT),
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
            "CROSSROADS_PASSWORD": f"{name}-password",
            "TERM": "xterm-256color",
        }
        args = ["--name", name, "--server", server.actions, "--updates", server.updates]
        line = [sys.executable, "-m", "crossroads", "play", *args]
        return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(line)

    # Panes by id, not index: when alice's pane closes, bob's index changes from 1 to 0.
    ids = ("-P", "-F", "#{pane_id}")
    size = ("-x", "150", "-y", "50")
    alice = tmux("new-session", "-d", *ids, "-s", "game", *size, "env " + command("Alice")).strip()
    bob = tmux("split-window", *ids, "-t", "game", "-v", "env " + command("Bob")).strip()
    tmux.remember_pids()
    tmux.wait_for(alice, "Alice>")
    assert "Exits: north" in tmux.wait_for(bob, "Bob>")
    tmux.wait_for(bob, " connected  room: The Crossroads | here: Alice")  # the toolbar

    tmux("send-keys", "-t", alice, "say hi from tmux", "Enter")
    tmux.wait_for(bob, 'Alice says, "hi from tmux"')
    tmux("send-keys", "-t", bob, "go ea", "Tab")
    tmux.wait_for(bob, "Bob> go east")
    tmux("send-keys", "-t", bob, "Enter")
    tmux.wait_for(bob, "East Road")
    tmux.wait_for(alice, "Bob leaves east.")
    tmux("send-keys", "-t", alice, "quit", "Enter")
    tmux.wait_for(bob, "room: East Road")
    deadline = time.monotonic() + WAIT
    while len(tmux("list-panes", "-t", "game").splitlines()) > 1:  # alice's client exited
        assert time.monotonic() < deadline, "alice's client did not exit after quit"
        time.sleep(0.05)
    history = tmp_path / "xdg" / "crossroads" / "history-alice"
    deadline = time.monotonic() + WAIT
    while "quit" not in (history.read_text() if history.exists() else ""):
        assert time.monotonic() < deadline, "alice's history was never written"
        time.sleep(0.05)


def test_a_pasted_page_and_ctrl_c_in_tmux(servers: Servers, tmux: Tmux, tmp_path: Path) -> None:
    """As a person would, two players: one pastes 10,000 characters, then `look` still
    answers and the other still hears them; Ctrl-C leaves with no traceback on the screen."""
    server = servers.start()

    def command(name: str) -> str:
        env = {
            "PYTHONPATH": str(REPO_ROOT),
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
            "CROSSROADS_PASSWORD": f"{name}-password",
            "TERM": "xterm-256color",
        }
        args = ["--name", name, "--server", server.actions, "--updates", server.updates]
        line = [sys.executable, "-m", "crossroads", "play", *args]
        return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(line)

    dora_command = "env " + command("dora") + '; echo "client exited with $?"'
    tmux("new-session", "-d", "-s", "game", "-x", "150", "-y", "50", dora_command)
    tmux("set-option", "-t", "game", "remain-on-exit", "on")  # read the screen after exit
    tmux("split-window", "-t", "game", "-v", "env " + command("eve"))
    tmux.remember_pids()
    dora, eve = "game:0.0", "game:0.1"
    tmux.wait_for(dora, "dora>")
    tmux.wait_for(eve, "eve>")
    tmux("set-buffer", "say " + "y" * 9996)
    tmux("paste-buffer", "-t", dora)
    tmux("send-keys", "-t", dora, "Enter")
    tmux.wait_for(dora, "the longest line is 500")
    tmux("send-keys", "-t", dora, "look", "Enter")
    tmux.wait_for(dora, "dora> look")
    deadline = time.monotonic() + WAIT
    while "Exits: north" not in tmux.screen(dora).rpartition("dora> look")[2]:
        assert time.monotonic() < deadline, tmux.screen(dora)
        time.sleep(0.05)
    tmux("send-keys", "-t", dora, "say still here", "Enter")
    tmux.wait_for(eve, 'dora says, "still here"')
    assert "yyyy" not in tmux.screen(eve)  # nothing of the paste was sent
    tmux("send-keys", "-t", dora, "C-c")
    # The shell prints the client's exit status (tmux's own pane_dead_status is sometimes
    # never filled in when the pane dies, so it cannot be waited on).
    tmux.wait_for(dora, "client exited with")
    screen = tmux("capture-pane", "-p", "-S", "-200", "-t", dora)
    assert "Goodbye, dora." in screen
    assert "Traceback" not in screen
    assert "client exited with 0" in screen, screen  # exit status 0, no signal
    tmux.wait_for(eve, "dora fades from view.")  # she left properly
