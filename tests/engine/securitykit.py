"""Helpers for the security tests: the sans-I/O codec driven over a plain Python socket.

`CodecPeer` runs one ZMTPConnection (with a PLAIN/CURVE/NULL mechanism) on a blocking socket,
answering its ZAP requests with an engine Authenticator, so a real libzmq socket (pyzmq) can be
the other end before the engine's live sockets know about security.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

import engine
from engine.auth import Authenticator
from engine.security.curve import CurveClient, CurveServer
from engine.security.keys import curve_keypair, key_bytes
from engine.security.mechanism import Mechanism, ZapSettings
from engine.zmtp import ControlEvent, State, ZapRequested, ZMTPConnection

WAIT = 10.0
POLL_S = 0.05


class PeerClosed(Exception):
    """The other end closed the connection."""


@dataclass
class Keys:
    """A CURVE key pair in both spellings."""

    public_z85: bytes
    secret_z85: bytes

    @property
    def public(self) -> bytes:
        return key_bytes(self.public_z85)

    @property
    def secret(self) -> bytes:
        return key_bytes(self.secret_z85)

    @classmethod
    def new(cls) -> Keys:
        return cls(*curve_keypair())


def curve_client(server: Keys, client: Keys) -> CurveClient:
    return CurveClient(server.public, client.public, client.secret)


def curve_server(server: Keys, address: str = "", domain: str = "") -> CurveServer:
    return CurveServer(server.secret, zap=ZapSettings(domain=domain, address=address))


@dataclass
class CodecPeer:
    """One codec on one connected socket; ZAP requests go to `auth` (None: no handler bound)."""

    sock: socket.socket
    codec: ZMTPConnection
    auth: Authenticator | None = None
    inbox: list[list[bytes]] = field(default_factory=list)
    events: list[ControlEvent] = field(default_factory=list)

    def flush(self) -> None:
        out = self.codec.data_to_send()
        if out:
            self.sock.sendall(out)

    def _events(self) -> None:
        for event in self.codec.pop_events():
            if isinstance(event, ZapRequested):
                if self.auth is None:
                    self.codec.zap_unavailable()
                else:
                    self.codec.zap_reply(self.auth.authenticate(event.request).to_frames())
            else:
                self.events.append(event)

    def _step(self, deadline: float) -> None:
        self.flush()
        # Short waits, so that a condition that does its own work (publishing) runs again soon.
        self.sock.settimeout(min(POLL_S, max(0.001, deadline - time.monotonic())))
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return
        if not data:
            raise PeerClosed
        was_traffic = self.codec.state is State.TRAFFIC
        self.inbox.extend(self.codec.receive_data(data))
        self._events()
        if not was_traffic and self.codec.state is State.TRAFFIC:
            self.inbox.extend(self.codec.receive_data(b""))
        self.flush()

    def run_until(self, done: Callable[[], bool], timeout: float = WAIT) -> None:
        """Pump until `done()`; a ProtocolError is raised after its ERROR went out."""
        deadline = time.monotonic() + timeout
        try:
            self._events()
            while not done():
                if time.monotonic() > deadline:
                    raise TimeoutError("codec peer: condition not reached")
                self._step(deadline)
        except engine.zmtp.ProtocolError:
            with contextlib.suppress(OSError):
                self.flush()
            raise

    def handshake(self, timeout: float = WAIT) -> None:
        self.run_until(lambda: self.codec.state is State.TRAFFIC, timeout)

    def send(self, *messages: list[bytes]) -> None:
        self.codec.send_messages(list(messages))
        self.flush()

    def receive(self, count: int = 1, timeout: float = WAIT) -> list[list[bytes]]:
        self.run_until(lambda: len(self.inbox) >= count, timeout)
        got, self.inbox = self.inbox[:count], self.inbox[count:]
        return got

    def pump_for(self, seconds: float) -> None:
        """Keep the connection serviced (answering PINGs) for a while."""
        end = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            self.run_until(lambda: time.monotonic() >= end, seconds + 1)

    def wait_closed(self, timeout: float = WAIT) -> None:
        """Until the other end closes; a ProtocolError from it propagates."""
        with contextlib.suppress(PeerClosed, ConnectionResetError):
            self.run_until(lambda: False, timeout)
            raise AssertionError("the peer kept the connection open")


class Endpoints:
    """Addresses for one transport, and plain sockets that connect or accept on them."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.tmp = tempfile.mkdtemp(prefix="crsec", dir="/tmp")
        self._n = 0

    def bind_address(self) -> str:
        self._n += 1
        if self.transport == "tcp":
            return "tcp://127.0.0.1:*"
        return f"ipc://{self.tmp}/s{self._n}"

    def connect(self, endpoint: str) -> socket.socket:
        if self.transport == "tcp":
            host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
            return socket.create_connection((host, int(port)), timeout=WAIT)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(WAIT)
        sock.connect(endpoint.removeprefix("ipc://"))
        return sock

    def listen(self) -> tuple[socket.socket, str]:
        if self.transport == "tcp":
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(4)
            return lsock, f"tcp://127.0.0.1:{lsock.getsockname()[1]}"
        self._n += 1
        path = f"{self.tmp}/l{self._n}"
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        lsock.listen(4)
        return lsock, f"ipc://{path}"

    def peer_address(self, sock: socket.socket) -> str:
        """What libzmq puts in a ZAP request's address frame for this connection."""
        if self.transport == "tcp":
            return sock.getpeername()[0]
        return ""

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def endpoints(transport: str) -> Iterator[Endpoints]:
    eps = Endpoints(transport)
    try:
        yield eps
    finally:
        eps.close()


def accept(lsock: socket.socket, timeout: float = WAIT) -> socket.socket:
    lsock.settimeout(timeout)
    conn, _ = lsock.accept()
    conn.settimeout(timeout)
    return conn


def codec(socket_type: int, mechanism: Mechanism, **kwargs: Any) -> ZMTPConnection:
    return ZMTPConnection(socket_type, mechanism=mechanism, **kwargs)


def monitor_events(monitor: zmq.Socket, wanted: set[int], timeout: float = WAIT) -> dict[int, int]:
    """Read a pyzmq monitor until one of `wanted` arrives; returns {event: value} seen so far."""
    seen: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not monitor.poll(int(max(1, (deadline - time.monotonic()) * 1000))):
            break
        msg = recv_monitor_message(monitor)
        seen[msg["event"]] = msg["value"]
        if msg["event"] in wanted:
            return seen
    raise AssertionError(f"no monitor event among {wanted}; saw {seen}")


def temp_dir() -> str:
    return tempfile.mkdtemp(prefix="crkeys")


def remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def env_has_ipc() -> bool:
    return hasattr(socket, "AF_UNIX") and os.name == "posix"


# -- codec against codec, in memory ------------------------------------------------------------


def answer_zap(conn: ZMTPConnection, auth: Authenticator | None) -> list[ControlEvent]:
    """Answer the codec's ZAP requests; returns its other events."""
    others = []
    for event in conn.pop_events():
        if isinstance(event, ZapRequested):
            if auth is None:
                conn.zap_unavailable()
            else:
                conn.zap_reply(auth.authenticate(event.request).to_frames())
            others.extend(answer_zap(conn, auth))
        else:
            others.append(event)
    return others


@dataclass
class Transcript:
    """What travelled between two codecs, and the events each one saw (ZAP ones answered)."""

    wire: list[tuple[ZMTPConnection, bytes]] = field(default_factory=list)
    events: dict[int, list[ControlEvent]] = field(default_factory=dict)

    def of(self, conn: ZMTPConnection) -> list[ControlEvent]:
        return self.events.get(id(conn), [])

    def sent_by(self, conn: ZMTPConnection) -> bytes:
        return b"".join(data for src, data in self.wire if src is conn)


def pump(
    a: ZMTPConnection, b: ZMTPConnection, auth: Authenticator | None = None, rounds: int = 20
) -> Transcript:
    """Exchange bytes until both sides are quiet."""
    log = Transcript()
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data:
                moved = True
                log.wire.append((src, data))
                dst.receive_data(data)
                dst.receive_data(b"")
            log.events.setdefault(id(dst), []).extend(answer_zap(dst, auth))
            if dst.has_output:
                moved = True
        if not moved:
            break
    return log


def allow_all() -> Authenticator:
    from engine.auth import CURVE_ALLOW_ANY

    auth = Authenticator()
    auth.configure_curve(location=CURVE_ALLOW_ANY)
    auth.configure_plain(passwords={"user": "pass"})
    return auth
