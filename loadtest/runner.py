"""`crossroads loadtest`: Locust against a Crossroads server, with a summary table at the end.

Runs ``locust -f loadtest/locustfile.py`` as a subprocess (headless by default, ``--web`` for
Locust's UI, on 127.0.0.1 unless ``--web-host`` says otherwise: the UI starts load at will). With
no ``--server`` a local ``crossroads serve`` is started first on free ports with a throw-away
SQLite store, and stopped afterwards by PID (front and its workers). With ``--processes``, Locust's
master listens for its worker processes on a free loopback port, not on its default 5557 on
every interface: two load tests may run at once, and nobody else reaches the master.

SIGINT, SIGTERM and SIGHUP all stop the run the same way: Locust (its whole process group, which
holds its --processes children) and the local server are stopped, then the summary is printed.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gameserver.known_hosts import unreachable
from gameserver.settings import endpoint_problem
from loadtest.ports import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
LOCAL = "tcp://127.0.0.1:0"
SERVE_READY_S = 60.0
STOP_S = 15.0
#: Where Locust's web UI listens: this machine only, unless asked (it starts and stops load).
DEFAULT_WEB_HOST = "127.0.0.1"
#: Signals that end a run cleanly (a terminal's Ctrl-C, a supervisor's stop, a closed terminal).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """A stop signal arrived; unwinding runs every cleanup on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: Stop signals that arrived while a child was being started (None: not starting one).
_held: list[int] | None = None


def _raise_stopped(signum: int, frame: object) -> None:
    # Once: the cleanup that follows (bounded by STOP_S per process) must not be cut short.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    if _held is not None:
        _held.append(signum)
        return
    raise Stopped(signum)


@contextmanager
def _starting_child() -> Iterator[None]:
    """A stop signal that arrives while a child is being started is raised once it is started.

    Raised inside `subprocess.Popen`, it would leave the child running with nobody holding its
    PID (the signals test saw a Locust master outlive the load test that way, on a loaded
    machine). The signal is not blocked instead: the child would inherit the mask."""
    global _held
    _held = []
    try:
        yield
    finally:
        held, _held = _held, None
    if held:
        raise Stopped(held[0])


def budgets_for(users: int, spawn_rate: float) -> list[str]:
    """The local server's front-wide login and sign-up budgets for a crowd of ``users`` new
    players arriving at ``spawn_rate`` a second: room for every one of them to register, and
    logins at twice the arrival rate (retries). With `serve`'s defaults (30 new accounts at
    once, then one per 2 s; 10 logins a second), 1,000 simulated newcomers are refused."""
    return [
        "--registration-burst",
        str(max(30, users)),
        "--logins-per-s",
        f"{max(10.0, 2 * spawn_rate):g}",
    ]


class LocalServer:
    """A `crossroads serve` child on free ports; every PID it reports is killed at stop()."""

    def __init__(self, workdir: Path, workers: int, users: int, spawn_rate: float) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["CROSSROADS_KEYS_DIR"] = str(workdir / "keys")  # a throw-away front, its own keys
        args = ["--workers", str(workers), "--store", f"sqlite:///{workdir / 'game.sqlite3'}"]
        args += ["--actions-bind", LOCAL, "--updates-bind", LOCAL, "--workers-bind", LOCAL]
        args += ["--log-level", "WARNING"]
        args += budgets_for(users, spawn_rate)
        self._log = (workdir / "serve.log").open("ab")
        self.pids: list[int] = []
        self.endpoints: dict[str, str] = {}
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        try:
            with _starting_child():
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "gameserver.serve", *args],
                    stdout=subprocess.PIPE,
                    stderr=self._log,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=REPO_ROOT,
                    text=True,
                )
                self.pids.append(self.process.pid)
                self._reader.start()
            ready = self._ready.wait(SERVE_READY_S)
        except BaseException:  # stopped while starting: nobody else knows our PIDs yet
            if self.pids:
                self.stop()
            else:  # Popen itself failed: nothing runs
                self._log.close()
            raise
        if not ready or "actions" not in self.endpoints:
            self.stop()
            raise RuntimeError(f"crossroads serve did not start; see {workdir / 'serve.log'}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if match := re.match(r"^(actions|updates) (\S+)", line):
                self.endpoints[match[1]] = match[2]
            elif match := re.match(r"^front public key (\S+)", line):
                self.endpoints["key"] = match[1]  # we started it: its own word is the key
            elif match := re.match(r"^worker \S+ \w+: pid (\d+)", line):
                self.pids.append(int(match[1]))
            elif line.startswith("ready"):
                self._ready.set()
        self._ready.set()  # exited: stop waiting

    def stop(self) -> None:
        """SIGTERM (graceful drain), then SIGKILL every known PID that is still there."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_S)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(STOP_S)
        self._reader.join(STOP_S)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def locust_command(
    args: argparse.Namespace, actions: str, updates: str, csv_prefix: str
) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", actions]
    cmd += ["--updates", updates, "--users", str(args.users), "--spawn-rate", str(args.spawn_rate)]
    cmd += ["--request-timeout", str(args.request_timeout), "--csv", csv_prefix]
    cmd += ["--login-timeout", str(args.login_timeout), "--wait", args.wait]
    if args.processes > 1:
        port = str(free_port())
        cmd += ["--processes", str(args.processes), "--master-bind-host", "127.0.0.1"]
        cmd += ["--master-bind-port", port, "--master-host", "127.0.0.1", "--master-port", port]
    if args.web:
        cmd += ["--web-host", args.web_host, "--web-port", str(args.web_port)]
        if args.run_time:
            cmd += ["--run-time", args.run_time]
    else:
        cmd += ["--headless", "--only-summary", "--run-time", args.run_time]
    if args.html:
        cmd += ["--html", str(args.html)]
    return cmd


#: Seconds between the progress lines of a headless run (Locust itself prints only the end).
PROGRESS_S = 10.0


def _wait_showing_progress(
    locust: subprocess.Popen[bytes], csv_prefix: str, started: float, *, show: bool
) -> int:
    """Locust's exit status; meanwhile, on stderr every PROGRESS_S, how far the run is."""
    while True:
        try:
            return locust.wait(timeout=PROGRESS_S if show else None)
        except subprocess.TimeoutExpired:
            line = progress_line(csv_prefix, time.monotonic() - started)
            if line is not None:
                print(line, file=sys.stderr, flush=True)


def progress_line(csv_prefix: str, elapsed: float) -> str | None:
    """ "  20s: 4,512 requests, 0 failed" from the stats Locust rewrites every second; None
    before its first requests (or while it is rewriting the file)."""
    try:
        with Path(f"{csv_prefix}_stats.csv").open(newline="") as f:
            total = next((r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"), None)
        if total is None:
            return None
        count, failed = int(total["Request Count"]), int(total["Failure Count"])
    except (OSError, KeyError, TypeError, ValueError, csv.Error):  # a row cut mid-rewrite
        return None
    return f"  {elapsed:.0f}s: {count:,} requests, {failed:,} failed"


def read_stats(csv_prefix: str) -> list[dict[str, str]]:
    """Final rows per request type and name, then Aggregated: ``PREFIX_final.csv`` (written by
    the locustfile at exit), else Locust's ``PREFIX_stats.csv``."""
    path = Path(f"{csv_prefix}_final.csv")
    if not path.exists():
        path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def summary(rows: list[dict[str, str]]) -> str:
    """A Markdown table: count, failures, actions/s and p50/p95/p99 (ms) per verb."""
    head = ("measure", "count", "fails", "per s", "p50 ms", "p95 ms", "p99 ms")
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    order = {"update": 1, "": 2}
    for row in sorted(rows, key=lambda r: (order.get(r["Type"], 0), r["Name"])):
        name = "all requests" if row["Name"] == "Aggregated" else row["Name"]
        rate = float(row["Requests/s"] or 0)
        cells = (name, row["Request Count"], row["Failure Count"], f"{rate:.1f}")
        cells += tuple(row.get(p, "") for p in ("50%", "95%", "99%"))
        lines.append("| " + " | ".join(cells) + " |")
    actions = [r for r in rows if r["Type"] == "game" and r["Name"] != "login"]
    rate = sum(float(r["Requests/s"] or 0) for r in actions)
    fails = sum(int(r["Failure Count"] or 0) for r in rows if r["Name"] != "Aggregated")
    lines.append(f"\nactions/s (game verbs, login excluded): {rate:.1f}; failures: {fails}")
    return "\n".join(lines)


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Load-test a Crossroads server with Locust (simulated players: look 40%, move 30%, "
            "say 20%, take/drop 10%; plus 'broadcast', a say's trip back to the speaker's "
            "SUB). Without --server a local server is started on free ports and stopped after."
        ),
    )
    parser.add_argument("--users", "-u", type=int, default=20, help="simulated players (20)")
    parser.add_argument("--spawn-rate", "-r", type=float, default=10, help="users/s started (10)")
    parser.add_argument(
        "--run-time", "-t", type=_run_time, default="30s", help="e.g. 30s, 2m, 1h20m (30s)"
    )
    parser.add_argument(
        "--server", metavar="ENDPOINT", type=_endpoint, help="front's actions endpoint"
    )
    parser.add_argument(
        "--updates",
        metavar="ENDPOINT",
        type=_endpoint,
        help="update endpoint: front or relay (--server's port+1)",
    )
    parser.add_argument("--csv", metavar="PREFIX", help="keep Locust's CSV stats (PREFIX_*.csv)")
    parser.add_argument("--html", metavar="FILE", type=Path, help="write Locust's HTML report")
    parser.add_argument("--web", action="store_true", help="Locust's web UI instead of headless")
    parser.add_argument("--web-port", type=int, default=8089, help="web UI port (8089)")
    parser.add_argument(
        "--web-host",
        default=DEFAULT_WEB_HOST,
        help=f"web UI address ({DEFAULT_WEB_HOST}; 0.0.0.0 opens it to every network)",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="Locust worker processes to spread users over"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="game workers of the local server (2)"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=5.0, help="seconds before an action fails (5)"
    )
    parser.add_argument(
        "--login-timeout", type=float, default=30.0, help="seconds before a login fails (30)"
    )
    parser.add_argument(
        "--wait",
        type=_wait_range,
        default="0.1-0.5",
        metavar="MIN-MAX",
        help="seconds each player waits between actions, drawn uniformly (0.1-0.5)",
    )
    return parser


#: A time span as Locust reads --run-time: seconds alone, or hours, minutes and seconds.
_TIME_SPAN = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")


def _run_time(text: str) -> str:
    """A positive time span (checked here, before a local server starts, for a clear error)."""
    match = _TIME_SPAN.fullmatch(text)
    if text.isdigit():
        seconds = int(text)
    elif text and match is not None:
        seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)
    else:
        raise argparse.ArgumentTypeError(
            f"expected a time span such as 30s, 2m or 1h20m, got {text!r}"
        )
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the run time must be more than 0 seconds")
    return text


def _wait_range(text: str) -> str:
    """MIN-MAX seconds, as the locustfile reads them (checked here for a clear error)."""
    try:
        low, high = (float(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX seconds such as 1-3, got {text!r}")
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError("expected 0 <= MIN <= MAX")
    return text


def run(args: argparse.Namespace, workdir: Path) -> int:
    server: LocalServer | None = None
    locust: subprocess.Popen[bytes] | None = None
    code, elapsed = 1, 0.0
    try:
        if args.server:
            actions = args.server
            updates = args.updates or _next_port(actions)
        else:
            server = LocalServer(workdir, args.workers, args.users, args.spawn_rate)
            actions = server.endpoints["actions"]
            updates = args.updates or server.endpoints["updates"]
            pid = server.process.pid
            print(f"local server pid {pid}: actions {actions}, updates {updates}", flush=True)
            budgets = " ".join(budgets_for(args.users, args.spawn_rate))
            print(f"  its login and sign-up budgets fit this crowd of newcomers: {budgets}")
        csv_prefix = args.csv or str(workdir / "locust")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        cmd = locust_command(args, actions, updates, csv_prefix)
        if server is not None:
            # The players' data directory (their known-hosts file) is the run's: a throwaway
            # server's key on a random port is no key to remember in the user's file, one
            # line per run.
            env["XDG_DATA_HOME"] = str(workdir / "players-data")
            if "key" in server.endpoints:
                cmd += [f"--server-key={server.endpoints['key']}"]  # a Z85 key may start with "-"
        started = time.monotonic()
        # Its own process group: Locust's --processes children are stopped with it, by its id.
        with _starting_child():
            locust = subprocess.Popen(
                cmd, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        print(f"locust pid {locust.pid}", flush=True)
        try:
            code = _wait_showing_progress(locust, csv_prefix, started, show=not args.web)
        except Stopped as stop:
            print(f"{stop}: stopping Locust and the local server", file=sys.stderr, flush=True)
            _stop_locust(locust)
            code = 128 + stop.signum  # the shell's convention for "ended by this signal"
        elapsed = time.monotonic() - started
    finally:
        if locust is not None and locust.poll() is None:  # a second signal, or an error
            _stop_locust(locust)
        if server is not None:
            server.stop()
    rows = read_stats(csv_prefix)
    if rows:
        print(f"\n{args.users} users, {elapsed:.0f}s (incl. start-up)\n{summary(rows)}")
    if code == 0 and not any(int(r["Request Count"] or 0) for r in rows):
        # Locust exits 0 when nothing failed, and nothing fails when nothing ends.
        print(
            f"no request ended in {elapsed:.0f}s: the players' logins were still waiting "
            f"(a server that does not answer, or a run shorter than --login-timeout)",
            file=sys.stderr,
        )
        code = 1
        reasons = failure_reasons(csv_prefix)
        if reasons:
            print("\nwhy requests failed:\n" + "\n".join(reasons))
            logged = server_log_tail(workdir / "serve.log") if server is not None else []
            if logged:  # the server's side of it (its log goes with the temporary directory)
                print("\nthe local server logged (last lines):\n" + "\n".join(logged))
    return code


#: Lines of the local server's log shown after a run with failures (it logs warnings only).
MAX_LOG_LINES = 20
#: Only the end of the log is read: a server flooded with bad requests may have logged a lot.
LOG_TAIL_BYTES = 64 * 1024


def server_log_tail(path: Path) -> list[str]:
    """The last lines of the local server's log, each cut to one line's length."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - LOG_TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    lines = [line for line in text.splitlines() if line.strip()]
    if size > LOG_TAIL_BYTES and lines:
        lines = lines[1:]  # the first one is cut at the start
    return [_one_line(line) for line in lines[-MAX_LOG_LINES:]]


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


#: Distinct failure reasons listed after the summary (the CSV keeps them all).
MAX_REASONS = 10
#: An error message is cut to this many characters: one line each.
REASON_CHARS = 160


def failure_reasons(csv_prefix: str) -> list[str]:
    """One line per distinct failure Locust recorded, the most frequent first: how many, of
    which request, and its error, so a failed run says why without opening the CSV."""
    path = Path(f"{csv_prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="") as f:
        failures = list(csv.DictReader(f))
    failures.sort(key=lambda r: -int(r.get("Occurrences") or 0))
    lines = []
    for row in failures[:MAX_REASONS]:
        error = _one_line(row.get("Error") or "")
        lines.append(f"- {row.get('Occurrences')} x {row.get('Method')} {row.get('Name')}: {error}")
    if len(failures) > MAX_REASONS:
        lines.append(f"- and {len(failures) - MAX_REASONS} other reason(s) (--csv keeps them)")
    return lines


def _stop_locust(locust: subprocess.Popen[bytes]) -> int:
    """SIGINT (Locust writes its stats and exits), then SIGKILL the group after STOP_S.

    The whole group, not only its leader: Locust's --processes workers can outlive their
    master. On a loaded machine one went on for a minute after the master had exited (the
    signals test caught it), so the group is waited for too, and killed if it stays."""
    code: int | None = None
    for signum in (signal.SIGINT, signal.SIGKILL):
        try:
            os.killpg(locust.pid, signum)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + STOP_S
        try:
            code = locust.wait(STOP_S)
        except subprocess.TimeoutExpired:
            continue
        if _group_ends(locust.pid, deadline):
            break
    return code if code is not None else locust.wait()


def _group_ends(group: int, deadline: float) -> bool:
    """Whether every process of ``group`` has ended (zombies count as ended) by ``deadline``."""
    while _group_alive(group):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)  # other processes' exits: nothing to wait on but the process table
    return True


def _group_alive(group: int) -> bool:
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: ask the kernel (which counts zombies too)
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # After the command: state, ppid, pgrp.
        if len(fields) > 2 and int(fields[2]) == group and fields[0] != b"Z":
            return True
    return False


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing, or an import hook refuses it
        return False


def _endpoint(text: str) -> str:
    problem = endpoint_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _next_port(endpoint: str) -> str:
    host, _, port = endpoint.rpartition(":")
    return f"{host}:{int(port) + 1}"


#: How long the check that a --server answers waits for its port (a TCP connect on a LAN).
#: Without that check a run against a server that is down showed 0 requests and 0 failures:
#: the players' logins wait out --login-timeout, longer than most runs.
REACH_TIMEOUT_S = 3.0


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the numbers and ports given, in one line, before anything starts
    (Locust would otherwise fail later with a traceback, or run a test that cannot pass)."""
    # `not 0 < x < inf`, not `x <= 0`: float() takes "nan", which passes every comparison.
    if args.users < 1 or args.processes < 1 or not 0 < args.spawn_rate < math.inf:
        return "--users, --processes and --spawn-rate must be positive"
    if args.processes > args.users:
        # Locust gives each player to one process: the extra ones would start, cost a
        # process each on this machine, and play nothing.
        return (
            f"--processes {args.processes} is more than --users {args.users}: "
            "each process plays at least one user"
        )
    if not (0 < args.request_timeout < math.inf and 0 < args.login_timeout < math.inf):
        return "--request-timeout and --login-timeout must be more than 0 seconds"
    if not args.server and args.workers < 1:
        return "--workers must be at least 1: the local server's workers answer the players"
    if args.web:
        if not 0 < args.web_port < 65536:
            return f"--web-port {args.web_port} is not a port (1-65535)"
        try:
            family = socket.getaddrinfo(args.web_host, args.web_port)[0][0]
            with socket.create_server((args.web_host, args.web_port), family=family):
                pass  # free now: Locust binds it a moment later
        except OSError as exc:
            why = exc.strerror or str(exc)
            return f"cannot open the web UI on {args.web_host}:{args.web_port}: {why}"
    return None


def main(argv: list[str], prog: str = "crossroads loadtest") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.server and not args.updates and not args.server.startswith("tcp://"):
        print(f"{prog}: --server {args.server} is not tcp://: give --updates too", file=sys.stderr)
        return 2
    if (problem := argument_problem(args)) is not None:
        print(f"{prog}: {problem}", file=sys.stderr)
        return 2
    if args.server and (why := unreachable(args.server, REACH_TIMEOUT_S)) is not None:
        print(
            f"{prog}: nothing answers at {args.server} ({why}): start the server first, or "
            "leave out --server and the load test starts its own",
            file=sys.stderr,
        )
        return 1
    if not _installed("locust"):  # Locust runs as a child: say so here, not in its traceback
        print(
            f"{prog} needs the 'loadtest' extra: pip install 'crossroads[loadtest]'",
            file=sys.stderr,
        )
        return 1
    # Locust runs in the package's directory: reports go where the user's relative paths point.
    if args.csv:
        args.csv = str(Path(args.csv).expanduser().resolve())
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    if args.html:
        args.html = args.html.expanduser().resolve()
        args.html.parent.mkdir(parents=True, exist_ok=True)
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in STOP_SIGNALS}
    try:
        with tempfile.TemporaryDirectory(prefix="crossroads-loadtest-") as tmp:
            try:
                return run(args, Path(tmp))
            except RuntimeError as exc:
                print(f"{prog}: {exc}", file=sys.stderr)
                return 1
            except Stopped as stop:  # before Locust started: the server is stopped already
                print(f"{prog}: stopped by {stop}", file=sys.stderr)
                return 128 + stop.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
