"""Secure player ports: a byte-logging proxy in the path sees no password and no token; the
client learns the key on first use, pins it, and refuses a changed one (issue 14, item 2)."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from serverkit import Server

import engine
import engine.asyncio as ezmq
from client.known_hosts import (
    KnownHosts,
    ServerKeyChanged,
    key_endpoint_for,
    parse_known_hosts,
    render_known_hosts,
    server_key,
)
from client.session import SyncGameSession
from engine.patterns.lazy_pirate import RequestFailed
from gameserver.cluster_keys import KeyAnnouncer
from gameserver.ping import ping
from gameserver.protocol import LoginReply

PASSWORD = "correct-horse-battery-staple"


class LoggingProxy:
    """A TCP relay in the path that keeps every byte it forwards, both ways."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("tcp://").rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.seen = bytearray()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:  # the server is gone (a client redialling at the test's end)
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    return
                with self.lock:
                    self.seen += data
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def test_a_proxy_in_the_path_sees_no_password_or_token(
    start_server, sqlite_url: str, tmp_path: Path
) -> None:
    server: Server = start_server(sqlite_url, 1)  # the defaults: no security flag at all
    key_endpoint = server.wait_for(r"^key (\S+)")[1]
    public = server.wait_for(r"^front public key (\S+)")[1]
    hosts = KnownHosts(tmp_path / "known_hosts")
    actions_proxy, updates_proxy = LoggingProxy(server.actions), LoggingProxy(server.updates)
    try:
        # First use: the key comes from the announcement and is remembered.
        key = server_key(actions_proxy.endpoint, known_hosts=hosts, key_endpoint=key_endpoint)
        assert key == public.encode()
        assert hosts.load() == {actions_proxy.endpoint: public}
        with SyncGameSession(actions_proxy.endpoint, updates_proxy.endpoint, server_key=key) as p:
            reply = p.login("Alice", PASSWORD)
            assert isinstance(reply, LoginReply)
            p.act("say hello there")
            token = reply.token
        seen = bytes(actions_proxy.seen) + bytes(updates_proxy.seen)
        assert len(seen) > 1000
        assert b"CURVE" in seen  # the greeting names the mechanism; the rest is sealed
        for secret in (PASSWORD.encode(), token.encode(), b"password", b"hello there"):
            assert secret not in seen
    finally:
        actions_proxy.close()
        updates_proxy.close()
    # A plaintext client is not served at all.
    with pytest.raises(RequestFailed):
        ping(server.actions, timeout=0.5)
    assert ping(server.actions, timeout=5, server_key=public.encode())["workers"] == 1


def test_a_changed_key_is_refused_loudly(tmp_path: Path) -> None:
    hosts = KnownHosts(tmp_path / "known_hosts")
    actions = "tcp://game.example:7301"

    async def announce(public: bytes) -> str | bytes | None:
        context = ezmq.Context()
        announcer = KeyAnnouncer(context, "tcp://127.0.0.1:0", public)
        task = asyncio.create_task(announcer.serve())
        try:
            return await asyncio.to_thread(
                server_key, actions, known_hosts=hosts, key_endpoint=announcer.endpoint
            )
        finally:
            task.cancel()
            announcer.close()
            context.destroy(linger=0)

    first, _ = engine.curve_keypair()
    assert asyncio.run(announce(first)) == first
    assert asyncio.run(announce(first)) == first  # the same key again: fine
    other, _ = engine.curve_keypair()
    with pytest.raises(ServerKeyChanged, match="HAS CHANGED"):
        asyncio.run(announce(other))
    assert hosts.load() == {actions: first.decode()}  # the pin stays
    # Nothing announced (server down or blocked): the pin is used, never plaintext.
    assert server_key(actions, known_hosts=hosts, key_endpoint="tcp://127.0.0.1:9") == first


@given(st.text(max_size=400))
def test_known_hosts_parser_never_raises_and_round_trips(text: str) -> None:
    hosts = parse_known_hosts(text)
    assert parse_known_hosts(render_known_hosts(hosts)) == hosts


def test_the_announcement_sits_one_port_below_the_action_port() -> None:
    assert key_endpoint_for("tcp://dc.example:7301") == "tcp://dc.example:7300"
    assert key_endpoint_for("tcp://[::1]:7311") == "tcp://[::1]:7310"
    assert key_endpoint_for("ipc:///tmp/game") is None
