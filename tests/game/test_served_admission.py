"""Issue 14's flood attacks on a real `crossroads serve`, re-run: fresh-name login floods,
fresh random tokens per request, ping floods and floods of tiny malformed requests."""

from __future__ import annotations

import secrets
import socket
import time

import pytest
from serverkit import Server

import engine
from gameserver.accounts import player_key
from gameserver.admission import AdmissionPolicy
from gameserver.protocol import (
    PING_BODY,
    ActionRequest,
    LoginRequest,
    encode,
)
from gameserver.store import open_store
from gameserver.store.state import GameState

POLICY = AdmissionPolicy()


def dealers(ctx: engine.Context, endpoint: str, n: int) -> list[engine.Socket]:
    socks = []
    for _ in range(n):
        sock = ctx.socket(engine.DEALER)
        sock.linger = 0
        sock.connect(endpoint)
        socks.append(sock)
    return socks


def drain(socks: list[engine.Socket], quiet_s: float = 1.0) -> list[list[bytes]]:
    """Every answer until none has come for `quiet_s`."""
    poller = engine.Poller()
    for sock in socks:
        poller.register(sock, engine.POLLIN)
    got: list[list[bytes]] = []
    while True:
        ready = dict(poller.poll(int(quiet_s * 1000)))
        if not ready:
            return got
        for sock in ready:
            while sock.poll(0):
                got.append(sock.recv_multipart())


def test_a_fresh_name_login_flood_is_bounded(start_server, sqlite_url: str) -> None:
    server: Server = start_server(sqlite_url, 2)
    names = [f"junk{secrets.token_hex(4)}" for _ in range(500)]
    ctx = server.client_context()
    latencies = []
    try:
        with server.sync_session() as alice:
            alice.login("Alice", "alice-password")
            socks = dealers(ctx, server.actions, 50)
            for i, name in enumerate(names):
                request = encode(LoginRequest(name=name, password="junk-password"))
                socks[i % 50].send_multipart([b"", request])
            for _ in range(20):
                started = time.monotonic()
                assert alice.act("look").ok
                latencies.append(time.monotonic() - started)
            drain(socks)
    finally:
        ctx.destroy(linger=0)
    latencies.sort()
    assert latencies[-1] < 1.0, f"an action took {latencies[-1]:.2f}s during the flood"
    with open_store(sqlite_url) as store:
        stored = store.transaction(
            lambda tx: sum(GameState(tx).account(player_key(n)) is not None for n in names)
        )
    assert 0 < stored <= POLICY.front_registration_burst + 5, stored


def test_an_operator_raises_the_front_wide_sign_up_budget(start_server, sqlite_url: str) -> None:
    """A launch-day crowd: `--registration-burst` and `--logins-per-s` let more newcomers in
    than the defaults would (30 accounts), and still no more than the raised budget. The
    names come in waves of 10 so the login queue never answers "busy" (these raw sockets do
    not retry)."""
    raised = 40
    server: Server = start_server(
        sqlite_url, 2, "--registration-burst", str(raised), "--logins-per-s", "200"
    )
    names = [f"crowd{secrets.token_hex(4)}" for _ in range(raised + 10)]
    ctx = server.client_context()
    try:
        socks = dealers(ctx, server.actions, 25)  # 2 sign-ups each: within the source budget
        for wave in range(0, len(names), 10):
            for i, name in enumerate(names[wave : wave + 10], start=wave):
                request = LoginRequest(name=name, password="crowd-password")
                socks[i % 25].send_multipart([b"", encode(request)])
            drain(socks)
    finally:
        ctx.destroy(linger=0)
    with open_store(sqlite_url) as store:
        stored = store.transaction(
            lambda tx: sum(GameState(tx).account(player_key(n)) is not None for n in names)
        )
    assert POLICY.front_registration_burst + 5 < stored <= raised + 5, stored


def test_fresh_tokens_pings_and_garbage_from_one_connection_are_limited(
    start_server, sqlite_url: str
) -> None:
    server: Server = start_server(sqlite_url, 1)
    ctx = server.client_context()
    try:
        (sock,) = dealers(ctx, server.actions, 1)
        for i in range(300):  # a fresh random token per request
            token = secrets.token_urlsafe(24)
            sock.send_multipart(
                [b"", encode(ActionRequest(token=token, action_id=f"a{i}", text="look"))]
            )
        answers = drain([sock])
        # Unknown tokens: the worker says "unauthorized"; past the connection's budget the
        # front answers itself, and past the error budget not at all.
        assert len(answers) < POLICY.request_burst + POLICY.error_burst + 10, len(answers)

        (pinger,) = dealers(ctx, server.actions, 1)
        for _ in range(1000):
            pinger.send_multipart([b"", PING_BODY])
        pongs = drain([pinger])
        # The front pings at the per-connection request budget (twice the session rate).
        assert len(pongs) <= POLICY.request_burst + 20, len(pongs)

        (junk,) = dealers(ctx, server.actions, 1)
        sent = 0
        for i in range(100_000):  # 1 MiB of tiny malformed requests (and their framing)
            frame = b"%05d" % (i % 100_000)
            junk.send_multipart([b"", frame[:5]])
            sent += 6
        received = sum(len(f) for msg in drain([junk], 2.0) for f in msg)
        assert received < sent / 100, f"{received} bytes answered to {sent} sent"
    finally:
        ctx.destroy(linger=0)


def this_machines_outside_address() -> str | None:
    """An address of this machine that is not loopback (the route's source address)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def test_connections_from_one_address_share_its_registration_budget(
    start_server, sqlite_url: str
) -> None:
    address = this_machines_outside_address()
    if address is None:
        pytest.skip("this machine has no address but loopback (loopback is not budgeted)")
    server: Server = start_server(sqlite_url, 2, "--actions-bind", "tcp://0.0.0.0:0")
    port = server.actions.rsplit(":", 1)[1]
    names = [f"addr{secrets.token_hex(4)}" for _ in range(100)]
    ctx = server.client_context()
    try:
        socks = dealers(ctx, f"tcp://{address}:{port}", 50)  # 50 connections, one address
        for i, name in enumerate(names):
            request = encode(LoginRequest(name=name, password="junk-password"))
            socks[i % 50].send_multipart([b"", request])
        drain(socks, 2.0)
    finally:
        ctx.destroy(linger=0)
    with open_store(sqlite_url) as store:
        stored = store.transaction(
            lambda tx: sum(GameState(tx).account(player_key(n)) is not None for n in names)
        )
    # The address's burst (and what refills meanwhile), well under the front-wide burst.
    assert 0 < stored <= POLICY.address_registration_burst + 2 < POLICY.front_registration_burst
