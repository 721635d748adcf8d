"""Fault injection for Freelance (RFC 10, model 3): brokerless failover across servers.

Servers run as real processes (`python -m engine.patterns.freelance server`); clients run here.
Servers are killed with SIGKILL or frozen with SIGSTOP while requests flow; every request must
still succeed. Every wait is bounded and wakes on a reply or a logged event.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.patterns.freelance import (
    PING,
    PONG,
    AsyncFreelanceClient,
    FreelanceClient,
    RequestFailed,
)

MODULE = "engine.patterns.freelance"
#: Short pings keep the run fast: a silent server is given up on after SERVER_TTL_S.
PING_INTERVAL_S = 0.1
SERVER_TTL_S = 0.3
WAIT = 15.0
REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def start_servers(procs: Any, n: int) -> tuple[list[Any], list[str]]:
    servers = [procs.spawn(MODULE, "server", "--bind", "tcp://127.0.0.1:0") for _ in range(n)]
    endpoints = [s.wait_for(r"listening (\S+)").group(1) for s in servers]
    return servers, endpoints


def client_for(endpoints: list[str], timeout: float = WAIT) -> FreelanceClient:
    client = FreelanceClient(
        timeout=timeout, ping_interval=PING_INTERVAL_S, server_ttl=SERVER_TTL_S
    )
    for endpoint in endpoints:
        client.connect(endpoint)
    return client


def warm_up(client: FreelanceClient, endpoints: list[str]) -> None:
    """Request until every server has answered a ping: from then on the primary is used."""
    deadline = time.monotonic() + WAIT
    while client.core.alive != endpoints:
        assert time.monotonic() < deadline, f"alive: {client.core.alive}"
        assert client.request([b"warm-up"]) == [b"warm-up"]


def test_freelance_survives_two_of_three_servers_sigkilled(procs: Any) -> None:
    servers, endpoints = start_servers(procs, 3)
    done = 0
    progress = threading.Condition()
    stop = threading.Event()
    failures: list[BaseException] = []
    answered_by: list[str] = []

    client = client_for(endpoints)
    warm_up(client, endpoints)

    def run() -> None:
        nonlocal done
        with client:
            try:
                while not stop.is_set():
                    body = [b"req", b"%d" % done]
                    assert client.request(body) == body
                    with progress:
                        answered_by.append(client.core.last_server or "")
                        done += 1
                        progress.notify_all()
            except BaseException as exc:
                failures.append(exc)
                with progress:
                    progress.notify_all()

    def wait_done(n: int) -> None:
        with progress:
            assert progress.wait_for(lambda: done >= n or failures, WAIT), f"stuck at {done}"
        assert not failures, failures

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_done(100)
        assert set(answered_by) == {endpoints[0]}  # the primary serves while it lives
        servers[0].signal(signal.SIGKILL)  # mid-stream: a request may be in flight
        wait_done(done + 100)
        servers[1].signal(signal.SIGKILL)
        wait_done(done + 100)
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive() and not failures, failures
    assert answered_by[-50:] == [endpoints[2]] * 50  # the last one standing


def test_freelance_request_moves_on_from_a_frozen_server(procs: Any) -> None:
    servers, endpoints = start_servers(procs, 2)
    with client_for(endpoints) as client:
        warm_up(client, endpoints)
        assert client.request([b"first"]) == [b"first"]
        assert client.core.last_server == endpoints[0]

        servers[0].signal(signal.SIGSTOP)
        started = time.monotonic()
        assert client.request([b"while", b"frozen"]) == [b"while", b"frozen"]
        assert client.core.last_server == endpoints[1]  # re-sent after the primary fell silent
        assert time.monotonic() - started >= SERVER_TTL_S

        # Thawed, the primary answers the stale request (dropped: old CCF) and pings again.
        servers[0].signal(signal.SIGCONT)
        deadline = time.monotonic() + WAIT
        while client.core.last_server != endpoints[0]:
            assert time.monotonic() < deadline, "the primary never came back"
            assert client.request([b"probe"]) == [b"probe"]


def test_freelance_fails_cleanly_when_no_server_answers(free_endpoint: Callable[[], str]) -> None:
    with client_for([free_endpoint(), free_endpoint()], timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(RequestFailed):
            client.request([b"anyone?"])
        assert 0.5 <= time.monotonic() - started < 0.5 + WAIT / 3
        with pytest.raises(RequestFailed):  # and the client stays usable
            client.request([b"still nobody?"])


def test_async_freelance_client_fails_over(procs: Any) -> None:
    servers, endpoints = start_servers(procs, 3)

    async def run() -> None:
        async with AsyncFreelanceClient(
            timeout=WAIT, ping_interval=PING_INTERVAL_S, server_ttl=SERVER_TTL_S
        ) as client:
            for endpoint in endpoints:
                client.connect(endpoint)
            for i in range(30):
                assert await client.request([b"%d" % i]) == [b"%d" % i]
            servers[0].signal(signal.SIGKILL)
            servers[1].signal(signal.SIGKILL)
            for i in range(30):
                assert await client.request([b"%d" % i]) == [b"%d" % i]
            assert client.core.last_server == endpoints[2]

    asyncio.run(asyncio.wait_for(run(), WAIT * 2))


@pytest.mark.interop
def test_libzmq_peers_speak_rfc10_with_ours(procs: Any, free_endpoint: Callable[[], str]) -> None:
    pyzmq = pytest.importorskip("zmq")
    _, endpoints = start_servers(procs, 1)
    ctx = pyzmq.Context()
    try:
        # A libzmq client against our server: PING -> PONG, and the CCF comes back unchanged.
        peer = ctx.socket(pyzmq.ROUTER)
        peer.setsockopt(pyzmq.ROUTER_MANDATORY, 1)
        peer.connect(endpoints[0])
        identity = endpoints[0].encode()
        deadline = time.monotonic() + WAIT
        while True:  # routable once the handshake has carried the server's identity
            try:
                peer.send_multipart([identity, PING])
                break
            except pyzmq.ZMQError:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert peer.poll(int(WAIT * 1000))
        assert peer.recv_multipart() == [identity, PONG]
        peer.send_multipart([identity, b"ccf-9", b"a", b"b"])
        assert peer.poll(int(WAIT * 1000))
        assert peer.recv_multipart() == [identity, b"ccf-9", b"a", b"b"]

        # Our client against a libzmq server whose identity is its endpoint.
        endpoint = free_endpoint()
        server = ctx.socket(pyzmq.ROUTER)
        server.setsockopt(pyzmq.IDENTITY, endpoint.encode())
        server.bind(endpoint)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                if server.poll(50):
                    client, *frames = server.recv_multipart()
                    if frames == [PING]:
                        server.send_multipart([client, PONG])
                    else:
                        server.send_multipart([client, frames[0], b"libzmq", *frames[1:]])

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with client_for([endpoint]) as client:
                assert client.request([b"x"]) == [b"libzmq", b"x"]
        finally:
            stop.set()
            thread.join(WAIT)
    finally:
        ctx.destroy(linger=0)


def test_cli_server_and_client(procs: Any) -> None:
    servers, endpoints = start_servers(procs, 2)
    run = subprocess.run(
        [sys.executable, "-m", MODULE, "client", "--count", "3", "hello", "world"]
        + [arg for ep in endpoints for arg in ("--connect", ep)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=REPO_ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["hello world"] * 3
    assert [s.stop() for s in servers] == [0, 0]  # SIGTERM: clean exit
    help_run = subprocess.run(
        [sys.executable, "-m", MODULE, "server", "--help"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        cwd=REPO_ROOT,
    )
    assert help_run.returncode == 0 and "--bind" in help_run.stdout
