"""Prometheus metrics of a real game: `crossroads serve` with a worker, a relay in front of one
player, scraped over HTTP during play, and (when Debian's `prometheus` is installed) scraped by a
real Prometheus server whose query API must then know the game's numbers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logkit import wait_log_line
from metricskit import scrape, value, wait_value
from serverkit import REPO_ROOT, WAIT, Server, StartServer, run

import engine
from client.session import GameSession
from gameserver.metrics import MetricsError, MetricsServer, offset_bind, parse_bind
from loadtest.ports import unused_port

PROMETHEUS = shutil.which("prometheus")


class Relay:
    """A `crossroads relay` process; its stdout's endpoint lines, read on a thread."""

    def __init__(self, front: Server, log: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
        env["XDG_DATA_HOME"] = str(log.parent / "relay-xdg")  # its own key and known hosts
        args = ["--upstream", front.updates, "--bind", "tcp://127.0.0.1:0"]
        args += ["--actions-upstream", front.actions, "--actions-bind", "tcp://127.0.0.1:0"]
        args += [
            "--upstream-key-endpoint",
            str(front.key_endpoint),
            "--key-bind",
            "tcp://127.0.0.1:0",
        ]
        args += ["--metrics-bind", "127.0.0.1:0"]
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "relay", *args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
        )
        self.endpoints: dict[str, str] = {}
        ready = threading.Event()

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                word, _, rest = line.strip().partition(" ")
                if word == "ready":
                    ready.set()
                elif rest:
                    self.endpoints[word] = rest
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        assert ready.wait(WAIT) and "metrics" in self.endpoints, self.endpoints

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(WAIT)
        self._log.close()


@pytest.fixture
def relay_factory(tmp_path: Path) -> Iterator[list[Relay]]:
    relays: list[Relay] = []
    yield relays
    for relay in relays:
        relay.kill()


def host_port(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


async def play(front: Server, relay: Relay) -> int:
    """Alice plays at the front, Bob through the relay: logins, talk, a refused command.
    Returns how many times Alice spoke: until one of her words reached the relay live."""
    alice = front.session()
    relay_key = relay.endpoints["key"].split()[1].encode()  # "key ENDPOINT PUBLIC"
    bob = GameSession(relay.endpoints["actions"], relay.endpoints["updates"], server_key=relay_key)
    relay_url = relay.endpoints["metrics"]
    says = 0
    try:
        await alice.login("Alice", "alice-password")
        await bob.login("Bob", "bob-password")
        deadline = time.monotonic() + WAIT
        while True:
            # A word said before the relay's subscription reached the front misses the
            # stream, and Bob repairs it with a catch-up (seen on a loaded machine): then
            # the relay has counted no event in yet, so Alice speaks again.
            assert (await alice.act(f"say hello {says}")).ok
            says += 1
            await bob.wait_for(
                lambda e, n=says: e.kind == "say" and f"hello {n - 1}" in e.text, WAIT
            )
            live = await asyncio.to_thread(scrape, relay_url)
            if value(live, "crossroads_relay_bytes_total", direction="in"):
                break
            assert time.monotonic() < deadline, "no event reached the relay live"
        assert not (await bob.act("dance wildly")).ok  # no such command
        assert (await bob.act("look")).ok
    finally:
        await alice.close()
        await bob.close()
    return says


def test_metrics_of_a_real_game(
    start_server: StartServer, sqlite_url: str, tmp_path: Path, relay_factory: list[Relay]
) -> None:
    front = start_server(sqlite_url, 1, "--metrics-bind", "127.0.0.1:0")
    front_url = front.wait_for(r"^metrics (\S+)")[1]
    worker_url = wait_log_line(front.log_path, r"worker\[w1\.\S+\] INFO \S+: metrics on (\S+)")[1]
    relay = Relay(front, tmp_path / "relay.log")
    relay_factory.append(relay)
    relay_url = relay.endpoints["metrics"]

    says = run(play(front, relay))

    at_front = scrape(front_url)
    assert value(at_front, "crossroads_workers_alive") == 1
    queued = value(at_front, "crossroads_front_requests_total", outcome="queued")
    assert queued >= 5  # the five above, plus the clients' catch-ups
    assert value(at_front, "crossroads_front_requests_total", outcome="busy") == 0
    assert value(at_front, "crossroads_front_replies_total") == queued
    # Two logins announce themselves (room and world), then a say: at least five events.
    assert value(at_front, "crossroads_events_published_total") >= 5
    assert value(at_front, "crossroads_socket_messages_total", socket="actions", direction="in")
    assert value(at_front, "crossroads_socket_bytes_total", socket="updates", direction="out") > 0
    info = value(at_front, "crossroads_process_info", role="front", id=_process_id(at_front))
    assert info == 1

    at_worker = scrape(worker_url)
    assert value(at_worker, "crossroads_actions_total", verb="login", outcome="ok") == 2
    assert value(at_worker, "crossroads_actions_total", verb="say", outcome="ok") == says
    assert value(at_worker, "crossroads_actions_total", verb="unknown", outcome="refused") == 1
    assert value(at_worker, "crossroads_actions_total", verb="look", outcome="ok") == 1
    assert value(at_worker, "crossroads_action_seconds_count", verb="say") == says
    assert value(at_worker, "crossroads_action_seconds_bucket", verb="login", le="+Inf") == 2
    assert value(at_worker, "crossroads_registrations_total") == 2
    handled = sum(v for (name, _), v in at_worker.items() if name == "crossroads_actions_total")
    assert handled == queued  # every request the front queued, the one worker counted
    wait_value(worker_url, "crossroads_players_online", 2)

    at_relay = scrape(relay_url)
    assert value(at_relay, "crossroads_relay_upstream_up", link="events") == 1
    assert value(at_relay, "crossroads_relay_upstream_up", link="actions") == 1
    up = value(at_relay, "crossroads_relay_actions_total", direction="up")
    assert up >= 3  # Bob's three requests and his catch-ups
    assert value(at_relay, "crossroads_relay_actions_total", direction="down") == up
    assert value(at_relay, "crossroads_relay_bytes_total", direction="in") > 0
    assert value(at_relay, "crossroads_socket_messages_total", socket="actions", direction="in")
    # Every event this relay saw was published moments before, on this machine's clock.
    assert 0 <= value(at_relay, "crossroads_relay_event_lag_seconds") < WAIT
    assert 0 <= value(at_relay, "crossroads_relay_last_event_age_seconds") < 120

    if PROMETHEUS is None:
        pytest.skip("Debian's prometheus is not installed: the real-Prometheus half is skipped")
    with prometheus(tmp_path, [front_url, worker_url, relay_url]) as api:
        wait_query(api, 'sum(crossroads_actions_total{verb="say"})', float(says))
        wait_query(api, "crossroads_workers_alive", 1.0)
        wait_query(api, 'crossroads_relay_upstream_up{link="events"}', 1.0)


def _process_id(samples: dict) -> str:
    for (name, labels), _ in samples.items():
        if name == "crossroads_process_info":
            return dict(labels)["id"]
    raise AssertionError("no crossroads_process_info")


class prometheus:
    """A real Prometheus scraping ``urls`` every second, its data in a temp dir."""

    def __init__(self, tmp_path: Path, urls: list[str]) -> None:
        self.port = unused_port()
        config = tmp_path / "prometheus.yml"
        targets = json.dumps([host_port(url) for url in urls])
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            f"scrape_configs:\n  - job_name: crossroads\n    static_configs:\n"
            f"      - targets: {targets}\n"
        )
        self._log = (tmp_path / "prometheus.log").open("ab")
        assert PROMETHEUS is not None
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=self._log,
        )
        self.api = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        return self.api

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(WAIT)
        self._log.close()


def wait_query(api: str, query: str, expected: float) -> None:
    """Until Prometheus answers ``query`` with ``expected`` (it scrapes every second)."""
    deadline = time.monotonic() + 60
    seen: object = None
    while time.monotonic() < deadline:
        url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                result = json.load(answer)["data"]["result"]
            seen = [float(r["value"][1]) for r in result]
            if seen == [expected]:
                return
        except OSError as exc:  # not listening yet
            seen = exc
        time.sleep(0.5)  # Prometheus's scrape pace; the deadline bounds the wait
    raise AssertionError(f"Prometheus answered {query!r} with {seen}, expected [{expected}]")


def test_hostile_scrapers_cost_only_their_connection() -> None:
    """Oversized heads, wrong methods and paths, and a silent client: each gets an answer or a
    closed connection, and the endpoint serves the next scrape."""
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    Counter("probe", "a probe", registry=registry).inc()

    async def scenario() -> None:
        server = MetricsServer("127.0.0.1:0", registry)
        url = await server.start()
        port = int(host_port(url).rsplit(":", 1)[1])

        async def ask(raw: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), WAIT)
            writer.close()
            return answer

        assert (await ask(b"GET /" + b"x" * 20000 + b" HTTP/1.1\r\n\r\n")) == b""
        assert (await ask(b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 405")
        assert (await ask(b"GET /secret HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
        assert (await ask(b"\x00\xff garbage\r\n\r\n")).startswith(b"HTTP/1.1 405")
        silent = await asyncio.open_connection("127.0.0.1", port)  # sends nothing
        ok = await ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200") and b"probe_total 1.0" in ok
        silent[1].close()
        await server.close()

    asyncio.run(asyncio.wait_for(scenario(), WAIT))


def test_bind_addresses() -> None:
    assert parse_bind("9300") == ("127.0.0.1", 9300)
    assert parse_bind(":9300") == ("127.0.0.1", 9300)
    assert parse_bind("0.0.0.0:9300") == ("0.0.0.0", 9300)
    assert parse_bind("[::1]:9300") == ("::1", 9300)
    assert offset_bind("10.0.0.5:9300", 2) == "10.0.0.5:9302"
    assert offset_bind("127.0.0.1:0", 2) == "127.0.0.1:0"
    for bad in ("host:port", "70000", ""):
        with pytest.raises(MetricsError):
            parse_bind(bad)


def test_a_taken_port_is_a_one_line_error(start_server: StartServer, sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        args = ["--workers", "0", "--store", sqlite_url, "--metrics-bind", f"127.0.0.1:{port}"]
        args += ["--actions-bind", "tcp://127.0.0.1:0", "--updates-bind", "tcp://127.0.0.1:0"]
        args += ["--workers-bind", "tcp://127.0.0.1:0"]
        done = subprocess.run(
            [sys.executable, "-m", "crossroads", "serve", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=WAIT,
        )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("crossroads serve: cannot serve metrics on 127.0.0.1:")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("role", ["serve", "relay"])
def test_without_the_extra_metrics_say_how_to_install_it(
    role: str, sqlite_url: str, tmp_path: Path
) -> None:
    """The process runs with prometheus_client made unimportable (as where the extra is not
    installed): asking for metrics is one line naming the pip command, never a traceback."""
    local = "tcp://127.0.0.1:0"
    if role == "serve":
        module = "gameserver.serve"
        args = ["--workers", "0", "--store", sqlite_url, "--actions-bind", local]
        args += ["--updates-bind", local, "--workers-bind", local]
    else:
        module = "relay.cli"
        args = ["--upstream", "tcp://127.0.0.1:9", "--bind", local]
        # Keys given (nothing learnt, nothing to warn about): the metrics error is the one line.
        upstream_key = engine.curve_keypair()[0].decode()
        args += [f"--upstream-key={upstream_key}", "--known-hosts", str(tmp_path / "known_hosts")]
        args += ["--keys-dir", str(tmp_path / "keys"), "--key-bind", local]
    program = (
        "import sys; sys.modules['prometheus_client'] = None; "
        f"from {module} import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, *args, "--metrics-bind", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=WAIT,
    )
    assert done.returncode in (1, 2) and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("pip install 'crossroads[metrics]'")
    assert len(done.stderr.strip().splitlines()) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=st.binary(max_size=2048), split=st.integers(min_value=0, max_value=2048))
def test_fuzzed_request_heads_never_stop_the_endpoint(head: bytes, split: int) -> None:
    """Random bytes, sent in two pieces and then closed: whatever comes back, the endpoint
    answers a proper scrape right after."""
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    Counter("probe", "a probe", registry=registry).inc()

    async def scenario() -> None:
        server = MetricsServer("127.0.0.1:0", registry)
        url = await server.start()
        port = int(host_port(url).rsplit(":", 1)[1])
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head[:split])
            await writer.drain()
            writer.write(head[split:])
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), WAIT)
            writer.close()
            assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\n\r\n")
            ok = await asyncio.wait_for(reader.read(), WAIT)
            writer.close()
            assert ok.startswith(b"HTTP/1.1 200") and b"probe_total 1.0" in ok
        finally:
            await server.close()

    asyncio.run(asyncio.wait_for(scenario(), WAIT))
