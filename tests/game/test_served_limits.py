"""Issue 14's memory and stall attacks on a real `crossroads serve`, re-run: oversized messages
close the sender (and the front's memory stays near its baseline), a subscriber's topics are
capped, connections over the cap are closed, and silent peers are dropped by the handshake
timer or by heartbeats."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time

import pytest
import zmq as pyzmq
from serverkit import Server

from gameserver.cluster_keys import ANNOUNCER_MAX_CONNECTIONS
from gameserver.limits import HANDSHAKE_IVL_MS, HEARTBEAT_MISSES, LISTEN_BACKLOG

MIB = 1024 * 1024
#: These attackers speak raw ZMTP with the NULL mechanism, byte by byte: the limits they test
#: sit below the security mechanism, so they run against cleartext player ports (against the
#: default CURVE ports a NULL greeting is simply closed at once, which would test nothing).
#: The subscription cap is tested over CURVE below.
RAW_NULL = ("--insecure-players",)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def address(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def greeting() -> bytes:
    """A ZMTP 3.1 NULL greeting, as a client sends it."""
    return b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32


def ready(socket_type: bytes) -> bytes:
    name = b"Socket-Type"
    body = b"\x05READY" + bytes([len(name)]) + name + struct.pack(">I", len(socket_type))
    body += socket_type
    return b"\x04" + bytes([len(body)]) + body


def handshaken(endpoint: str, socket_type: bytes) -> socket.socket:
    sock = socket.create_connection(address(endpoint))
    sock.sendall(greeting() + ready(socket_type))
    got = b""
    while len(got) < 64 + 2:  # the front's greeting and the start of its READY
        chunk = sock.recv(4096)
        assert chunk, "the front closed during the handshake"
        got += chunk
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True once the peer closes (EOF or reset) before the deadline; everything read is dropped."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_announced_200_mib_messages_close_the_sender_and_cost_no_memory(
    start_server, sqlite_url: str
) -> None:
    server: Server = start_server(sqlite_url, 1, *RAW_NULL)
    workers = server.wait_for(r"^workers (\S+)")[1]
    baseline = rss_mib(server.process.pid)
    attackers = []
    for endpoint, kind in [(server.updates, b"SUB")] * 4 + [(server.actions, b"DEALER")] * 4:
        sock = handshaken(endpoint, kind)
        # A long frame announcing 200 MiB, then the first MiB of it.
        sock.sendall(b"\x02" + struct.pack(">Q", 200 * MIB))
        try:
            sock.sendall(b"\x00" * MIB)
        except OSError:
            pass  # closed already: what we want
        attackers.append(sock)
    for sock in attackers:
        assert closed_within(sock, 10), "an oversized sender was kept"
        sock.close()
    # The worker port, before its CURVE handshake: the greeting alone is wrong (NULL), closed.
    sock = socket.create_connection(address(workers))
    sock.sendall(greeting() + ready(b"DEALER") + b"\x02" + struct.pack(">Q", 200 * MIB))
    assert closed_within(sock, 10)
    sock.close()
    grown = rss_mib(server.process.pid) - baseline
    assert grown < 50, f"front RSS grew {grown:.0f} MiB"
    assert server.ping()["workers"] == 1


def test_a_subscriber_keeps_at_most_max_subscriptions(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 1, "--max-subscriptions", "50")
    before = server.ping()["subscriptions"]
    ctx = pyzmq.Context()
    try:
        sub = ctx.socket(pyzmq.SUB)
        sub.linger = 0
        # A libzmq peer over CURVE (the default): the cap holds after the handshake too.
        assert server.key is not None
        sub.curve_serverkey = server.key
        sub.curve_publickey, sub.curve_secretkey = pyzmq.curve_keypair()
        for i in range(5000):
            sub.subscribe(b"room.junk-%d" % i)
        sub.connect(server.updates)
        deadline = time.monotonic() + 20
        seen = 0
        while time.monotonic() < deadline:
            seen = server.ping()["subscriptions"] - before
            if seen >= 50:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # let anything over the cap arrive, if it were kept
        seen = server.ping()["subscriptions"] - before
        assert seen == 50, f"the front kept {seen} subscriptions of one peer"
    finally:
        ctx.destroy(linger=0)


def test_connections_over_the_cap_are_closed(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 1, "--max-connections", "5", *RAW_NULL)
    assert listen_backlog(server.updates) == 5  # no more waiting than may be held
    held = [handshaken(server.updates, b"SUB") for _ in range(5)]
    extra = socket.create_connection(address(server.updates))
    assert closed_within(extra, 5), "a connection over --max-connections was kept"
    for sock in held:
        sock.close()
    extra.close()


def test_silent_peers_are_closed(start_server, sqlite_url: str) -> None:
    heartbeat_s = 1.0  # --player-heartbeat: the default (10 s) would hold the test 40 s
    server: Server = start_server(sqlite_url, 1, f"--player-heartbeat={heartbeat_s}", *RAW_NULL)
    silent_s = heartbeat_s * (1 + HEARTBEAT_MISSES)  # the first PING, then its timeout
    # Connected, never greets: the handshake timer closes it.
    mute = socket.create_connection(address(server.actions))
    # Handshaken, then silent (answers no PING): heartbeats close it.
    stalled = handshaken(server.updates, b"SUB")
    started = time.monotonic()
    assert closed_within(mute, HANDSHAKE_IVL_MS / 1000 + 5)
    assert closed_within(stalled, silent_s + 5)
    assert time.monotonic() - started < max(HANDSHAKE_IVL_MS / 1000, silent_s) + 5
    mute.close()
    stalled.close()


def listen_backlog(endpoint: str) -> int:
    """A listening socket's backlog as the kernel holds it (ss's Send-Q for a listener)."""
    line = subprocess.run(
        ["ss", "-ltnH", f"sport = :{address(endpoint)[1]}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(line[2])


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a backlog")
def test_player_ports_queue_a_reconnect_storm_in_the_kernel(start_server, sqlite_url: str) -> None:
    """Players reconnecting at once wait in the kernel's accept queue (LISTEN_BACKLOG), not
    in SYN retries a second apart, as they would past libzmq's default backlog of 100."""
    server: Server = start_server(sqlite_url, 1)
    server.ping()  # the front answers: both player ports listen
    assert listen_backlog(server.actions) == LISTEN_BACKLOG
    assert listen_backlog(server.updates) == LISTEN_BACKLOG
    # The key announcement, where a crowd of first connections arrives: as much as it holds.
    assert server.key_endpoint is not None
    assert listen_backlog(server.key_endpoint) == min(LISTEN_BACKLOG, ANNOUNCER_MAX_CONNECTIONS)


def test_the_key_announcer_closes_a_silent_connection(start_server, sqlite_url: str) -> None:
    """A stranger that connects to the key announcement and never greets is closed by the
    handshake timer, as on the player ports: idle connections cannot pile up there."""
    server: Server = start_server(sqlite_url, 1)
    assert server.key_endpoint is not None
    mute = socket.create_connection(address(server.key_endpoint))
    assert closed_within(mute, HANDSHAKE_IVL_MS / 1000 + 5)
    mute.close()
