"""`crossroads loadtest` stopped by SIGTERM (a supervisor, `docker stop`, `kill`) leaves nothing
behind: not its local server, not the server's workers, not Locust nor Locust's --processes
children. And Locust's web UI listens on this machine only unless told otherwise.

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "relay"))  # relaykit: Proc

from relaykit import Proc

from loadtest.ports import free_ports

#: Bound on one wait: the local server and Locust starting on a loaded 2-core machine.
WAIT = 60.0


def parents() -> dict[int, int]:
    """pid -> parent pid, for every process on this machine."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            found[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def descendants(root: int) -> set[int]:
    tree = parents()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in tree.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def named(pids: set[int]) -> dict[int, str]:
    """Each process with its command line, for a failure message."""
    found = {}
    for pid in pids:
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            found[pid] = "(gone)"
    return found


class Loadtest(Proc):
    """A `crossroads loadtest` process (or another `crossroads` command), and every
    descendant it was ever seen with."""

    def __init__(self, tmp_path: Path, *args: str, command: tuple[str, ...] = ()) -> None:
        argv = ["-m", "crossroads", *(command or ("loadtest", "--workers", "1")), *args]
        self.log_path = tmp_path / f"{(command or ('loadtest',))[0]}.log"
        super().__init__(argv, self.log_path)
        self.seen: set[int] = set()

    def wait_for_stderr(self, text: str) -> None:
        """Until the process's stderr (its log file) holds ``text``."""
        deadline = time.monotonic() + WAIT
        while text not in self.log_path.read_text(errors="replace"):
            assert self.process.poll() is None, self.log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, f"no {text!r} on stderr"
            time.sleep(0.2)  # polling the log file; the deadline bounds the wait

    def wait_for_descendant(self, *words: str, child: bool = False) -> int:
        """Until a descendant (a child of its own, if ``child``) has a command line holding
        all of ``words``; its PID."""
        deadline = time.monotonic() + WAIT
        while True:
            tree = descendants(self.process.pid)
            self.seen |= tree
            if child:
                tree = {pid for pid, parent in parents().items() if parent == self.process.pid}
            for pid, line in named(tree).items():
                if all(word in line for word in words):
                    return pid
            assert time.monotonic() < deadline, f"no {words} among {named(tree)}"
            time.sleep(0.2)  # polling the process table; the deadline bounds the wait

    def wait_tree(self, at_least: int, root: int | None = None) -> set[int]:
        """Until the process (or its descendant `root`) has that many descendants."""
        deadline = time.monotonic() + WAIT
        while True:
            tree = descendants(self.process.pid)
            self.seen |= tree
            counted = tree if root is None else descendants(root)
            if len(counted) >= at_least:
                return tree
            assert time.monotonic() < deadline, f"only {len(counted)} descendants"
            time.sleep(0.2)  # polling the process table; the deadline bounds the wait

    def terminate_and_check_nothing_is_left(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(WAIT)
        deadline = time.monotonic() + 10
        while left := {pid for pid in self.seen if running(pid)}:
            assert time.monotonic() < deadline, f"left running after SIGTERM: {named(left)}"
            time.sleep(0.1)  # reaping takes a moment; the deadline bounds the wait
        return code

    def kill_all(self) -> None:
        if self.process.poll() is None:  # a test that failed early never walked the tree
            self.seen |= descendants(self.process.pid)
        for pid in self.seen:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        self.kill()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Loadtest]]:
    started: list[Loadtest] = []

    def make(*args: str, command: tuple[str, ...] = ()) -> Loadtest:
        started.append(Loadtest(tmp_path, *args, command=command))
        return started[-1]

    yield make
    for run in started:
        run.kill_all()


@pytest.mark.slow
def test_sigterm_stops_locust_its_processes_and_the_local_server(
    start: Callable[..., Loadtest],
) -> None:
    run = start("-u", "2", "-r", "2", "-t", "300s", "--processes", "2")
    run.wait_for(r"^local server pid \d+", timeout=WAIT)
    locust = int(run.wait_for(r"^locust pid (\d+)", timeout=WAIT)[1])
    # Locust's 2 worker processes: counting the whole tree is not enough, as serve's worker
    # has a hashing process, and the count was once reached while Locust was still starting.
    run.wait_tree(at_least=2, root=locust)
    assert run.terminate_and_check_nothing_is_left() == 128 + signal.SIGTERM


#: A `bench players` row with listening players, stopped in its second round (" r1" on
#: stderr: the first is over), while the listeners' child follows its players.
BENCH_ROW = ("--rows", "rate", "--players", "20", "--listeners", "10", "--duration", "4")


@pytest.mark.slow
def test_sigterm_stops_bench_players_and_everything_it_started(
    start: Callable[..., Loadtest],
) -> None:
    """The bench's server, its workers and its listening players' child go with it. They used
    to outlive a SIGTERM, the child spinning at a full core on its closed pipe."""
    run = start(*BENCH_ROW, "--rounds", "30", command=("bench", "players"))
    run.wait_for_descendant("gameserver.worker")
    # The listeners' child (the bench's own; serve's workers have spawned children too).
    run.wait_for_descendant("multiprocessing", "spawn_main", child=True)
    run.wait_for_stderr(" r1")
    assert run.terminate_and_check_nothing_is_left() == 130  # interrupted, as by Ctrl-C


@pytest.mark.slow
def test_bench_players_listening_child_ends_when_the_bench_is_killed(
    start: Callable[..., Loadtest],
) -> None:
    """SIGKILL leaves no time to clean up; the listeners' child sees its pipe close and ends
    (the server is the test's to kill)."""
    run = start(*BENCH_ROW, "--rounds", "30", command=("bench", "players"))
    run.wait_for_descendant("gameserver.worker")
    child = run.wait_for_descendant("multiprocessing", "spawn_main", child=True)
    run.wait_for_stderr(" r1")
    run.process.kill()
    run.process.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while running(child):
        assert time.monotonic() < deadline, f"still running: {named({child})}"
        time.sleep(0.1)  # polling the process table; the deadline bounds the wait


@pytest.mark.slow
def test_the_web_ui_listens_on_loopback_only(start: Callable[..., Loadtest]) -> None:
    (port,) = free_ports(1)
    run = start("--web", "--web-port", str(port), "-u", "1")
    deadline = time.monotonic() + WAIT
    while not (listening := listeners(port)):
        assert time.monotonic() < deadline, "the web UI never listened"
        time.sleep(0.2)  # polling the kernel's socket table; the deadline bounds the wait
    run.wait_tree(at_least=3)
    assert listening == {f"127.0.0.1:{port}"}
    run.terminate_and_check_nothing_is_left()


def listeners(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from the kernel, via ss)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[3] for line in out.splitlines() if line.strip()}


#: A process group like Locust's under load: the leader exits on SIGINT, its child (a busy
#: --processes worker) does not. The child says it is ready, then the leader prints its pid.
STUBBORN_GROUP = """
import signal, subprocess, sys, time
# Locust gets SIGINT's default from the runner, which handles SIGINT itself (exec resets a
# handled signal). A test run from a shell's background job inherits SIGINT ignored instead,
# and an ignored SIGINT stays ignored across exec: the leader would never go on SIGINT.
signal.signal(signal.SIGINT, signal.default_int_handler)
ignoring = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print(flush=True); time.sleep(120)"
child = subprocess.Popen([sys.executable, "-c", ignoring], stdout=subprocess.PIPE)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(120)
"""


def test_stopping_locust_ends_its_whole_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that outlives Locust's master is killed with the group, not left behind."""
    from loadtest import runner

    monkeypatch.setattr(runner, "STOP_S", 1.0)  # how long each signal is given, not a sleep
    leader = subprocess.Popen(
        [sys.executable, "-c", STUBBORN_GROUP], stdout=subprocess.PIPE, start_new_session=True
    )
    child = 0
    try:
        assert leader.stdout is not None
        child = int(leader.stdout.readline())
        assert runner._stop_locust(leader) == -signal.SIGINT  # the leader went on SIGINT
        assert not running(child), named({child})  # and the rest of its group with it
    finally:
        for pid in (leader.pid, child):
            if pid and running(pid):
                os.kill(pid, signal.SIGKILL)
        leader.wait(WAIT)
        if leader.stdout is not None:
            leader.stdout.close()


def test_a_stop_signal_while_a_child_starts_is_raised_once_it_has_started() -> None:
    """Raised inside Popen, the signal would leave the child running with nobody holding its
    PID; it is raised when the start is over, where the child is stopped like any other."""
    from loadtest import runner

    previous = {signum: signal.getsignal(signum) for signum in runner.STOP_SIGNALS}
    signal.signal(signal.SIGTERM, runner._raise_stopped)
    child: subprocess.Popen[bytes] | None = None
    try:
        with pytest.raises(runner.Stopped) as stopped, runner._starting_child():
            os.kill(os.getpid(), signal.SIGTERM)  # handled at the next bytecode: here
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        assert stopped.value.signum == signal.SIGTERM
        assert child is not None and child.poll() is None  # started, and its PID is known
    finally:
        for signum, handler in previous.items():  # (the handler ignored them after the first)
            signal.signal(signum, handler)
        if child is not None:
            child.kill()
            child.wait(WAIT)
