"""Freelance (ZeroMQ RFC 10, FLP), model 3: brokerless reliable request-reply over N servers.

Client and servers both use ROUTER sockets. A server's routing id is its public endpoint, so a
client that connected to `tcp://host:port` addresses it by that string. A client sends PING
(one frame) to each server every ping interval and the server answers PONG; a request is a
control frame (CCF, here a sequence number) plus the body, and the server returns the CCF
unchanged followed by its reply. The client sends each request to the first live server
(servers are tried in the order they were connected, primary first) and moves it to the next
live one if that server goes silent for the TTL or becomes unreachable; replies carrying an old
CCF are dropped.

`FreelanceCore` holds the client logic without I/O; `FreelanceClient` (sync) and
`AsyncFreelanceClient` (asyncio) move its messages; `FreelanceServer` is a sync server.

Run standalone: `python -m engine.patterns.freelance server|client --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import Context
from .. import constants as c
from ..asyncio import Context as AsyncContext
from ..errors import ZMQError
from .demo_cli import positive, setup_logging, startup, stop_on_signals, verbose_option
from .lazy_pirate import PatternError, RequestFailed, as_frames
from .simple_pirate import STOP_POLL_S, Handler, echo

log = logging.getLogger(__name__)

#: RFC 10 commands: single frames.
PING = b"PING"
PONG = b"PONG"

#: Seconds between pings to each server (the Guide's 2 s): idle links stay verified cheaply.
PING_INTERVAL_S = 2.0
#: Silence, after a ping or request, before a server counts as dead (RFC 10: 2-3 intervals).
SERVER_TTL_S = 6.0
#: A request's overall budget across every server (the Guide's 3 s global timeout).
REQUEST_TIMEOUT_S = 3.0
#: Re-ping a server we cannot route to yet (still connecting, or down) this soon: the failed
#: send is local and cheap, and a freshly started client finds its servers within this delay.
UNREACHABLE_RETRY_S = 0.1

#: How a server is told apart from another: its public endpoint, as bytes.
ServerId = bytes


@dataclass(slots=True)
class ServerState:
    endpoint: str
    alive: bool = False  # answered since it was last found dead
    ping_at: float = 0.0  # next ping due
    awaiting_since: float | None = None  # sent something, heard nothing back since


@dataclass(slots=True)
class _Pending:
    ccf: bytes
    body: list[bytes]
    deadline: float
    server: ServerId | None = None  # where it went last; None: waiting for a live server
    sends: list[ServerId] = field(default_factory=list)


class FreelanceCore:
    """The client side of RFC 10 with no I/O: the clock and frames in, messages out.

    Outgoing messages start with the server's routing id (its endpoint). Call `tick` when
    `timeout` says so, `on_message` with each received message, and `unreachable` when a send
    to a server fails. One request at a time.
    """

    def __init__(
        self, *, ping_interval: float = PING_INTERVAL_S, server_ttl: float = SERVER_TTL_S
    ) -> None:
        if ping_interval <= 0 or server_ttl <= 0:
            raise ValueError("ping_interval and server_ttl must be positive")
        self.ping_interval = ping_interval
        self.server_ttl = server_ttl
        self.servers: dict[ServerId, ServerState] = {}  # connection order = preference order
        self.pending: _Pending | None = None
        self.last_server: str | None = None  # the endpoint that answered the last request
        self._sequence = 0

    def add_server(self, endpoint: str) -> None:
        """A server to use; it is pinged at the next tick."""
        self.servers.setdefault(endpoint.encode(), ServerState(endpoint))

    @property
    def alive(self) -> list[str]:
        return [s.endpoint for s in self.servers.values() if s.alive]

    def begin(self, frames: Sequence[bytes] | bytes, timeout: float, now: float) -> None:
        """Start a request; its messages go out from the next tick."""
        if self.pending is not None:
            raise PatternError("a request is already in progress")
        self._sequence += 1
        self.pending = _Pending(b"%d" % self._sequence, as_frames(frames), now + timeout)

    def on_message(self, msg: list[bytes], now: float) -> list[bytes] | None:
        """A message from a server; returns the reply body if it answers the current request."""
        server = self.servers.get(msg[0]) if msg else None
        if server is None or len(msg) < 2:
            return None
        if not server.alive:
            log.info("server-alive %s", server.endpoint)
        server.alive = True
        server.awaiting_since = None
        pending = self.pending
        if len(msg) >= 3 and pending is not None and msg[1] == pending.ccf:
            self.pending = None
            self.last_server = server.endpoint
            return msg[2:]
        return None  # PONG, or a late reply to a request already answered or given up

    def tick(self, now: float) -> list[list[bytes]]:
        """Find silent servers dead, ping the due ones, route a waiting request.

        Raises RequestFailed when the current request's deadline has passed.
        """
        out: list[list[bytes]] = []
        pending = self.pending
        for identity, server in self.servers.items():
            since = server.awaiting_since
            if since is not None and now - since >= self.server_ttl:
                self._dead(identity, server, "silent")
            if now >= server.ping_at:
                out.append([identity, PING])
                server.ping_at = now + self.ping_interval
                if server.awaiting_since is None:
                    server.awaiting_since = now
        if pending is not None and now >= pending.deadline:
            self.pending = None
            tried = ", ".join(sorted({s.decode() for s in pending.sends})) or "none reachable"
            raise RequestFailed(
                f"no reply within the timeout (sent to: {tried})", len(pending.sends)
            )
        out.extend(self._route(now))
        return out

    def unreachable(self, identity: ServerId, now: float) -> list[list[bytes]]:
        """A send to this server failed (not connected, or not reading): try it again soon."""
        server = self.servers.get(identity)
        if server is None:
            return []
        self._dead(identity, server, "unreachable")
        server.ping_at = min(server.ping_at, now + UNREACHABLE_RETRY_S)
        return self._route(now)

    def timeout(self, now: float) -> float:
        """Seconds until tick() has something to do."""
        due = [s.ping_at for s in self.servers.values()]
        due += [
            s.awaiting_since + self.server_ttl
            for s in self.servers.values()
            if s.awaiting_since is not None
        ]
        if self.pending is not None:
            due.append(self.pending.deadline)
        return max(0.0, min(due, default=now + self.ping_interval) - now)

    def _dead(self, identity: ServerId, server: ServerState, why: str) -> None:
        if server.alive:
            log.info("server-dead %s (%s)", server.endpoint, why)
        server.alive = False
        server.awaiting_since = None
        if self.pending is not None and self.pending.server == identity:
            self.pending.server = None  # the request goes to the next live server

    def _route(self, now: float) -> list[list[bytes]]:
        pending = self.pending
        if pending is None or pending.server is not None:
            return []
        for identity, server in self.servers.items():
            if server.alive:
                pending.server = identity
                pending.sends.append(identity)
                if server.awaiting_since is None:
                    server.awaiting_since = now
                return [[identity, pending.ccf, *pending.body]]
        return []  # no live server yet: pings will find one


def _new_client_socket(context: Any) -> Any:
    sock = context.socket(c.ROUTER)  # RFC 10: transient, so no routing id of our own
    sock.linger = 0
    # Sending to a server that is not connected must fail, so the request can go elsewhere.
    sock.setsockopt(c.ROUTER_MANDATORY, 1)
    return sock


def _send_failed(exc: ZMQError) -> bool:
    return exc.errno in (c.EAGAIN, c.EHOSTUNREACH)


class FreelanceClient:
    """Sync model-3 client: `connect()` each server, then `request(frames)` -> reply body.

    Raises RequestFailed when no server answers within `timeout` seconds. Pings only go out
    while a request is in progress (no background thread); a server's liveness is judged on
    answers to what was actually sent, so idle periods do not count against it.
    """

    def __init__(
        self,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        ping_interval: float = PING_INTERVAL_S,
        server_ttl: float = SERVER_TTL_S,
        context: Context | None = None,
    ) -> None:
        self.timeout = timeout
        self.core = FreelanceCore(ping_interval=ping_interval, server_ttl=server_ttl)
        self.context = context or Context.instance()
        self.socket = _new_client_socket(self.context)

    def connect(self, endpoint: str) -> None:
        self.socket.connect(endpoint)
        self.core.add_server(endpoint)

    def request(self, frames: Sequence[bytes] | bytes, *, timeout: float | None = None) -> list:
        core, sock = self.core, self.socket
        while sock.poll(0):  # answers that came in while idle (PONGs, late replies)
            core.on_message(sock.recv_multipart(), time.monotonic())
        core.begin(frames, self.timeout if timeout is None else timeout, time.monotonic())
        try:
            while True:
                self._send(core.tick(time.monotonic()))
                if sock.poll(max(1, int(core.timeout(time.monotonic()) * 1000))):
                    reply = core.on_message(sock.recv_multipart(), time.monotonic())
                    if reply is not None:
                        return reply
        finally:
            core.pending = None  # interrupted: the next request starts clean

    def _send(self, out: list[list[bytes]]) -> None:
        while out:
            msg = out.pop(0)
            try:
                self.socket.send_multipart(msg, c.DONTWAIT)
            except ZMQError as exc:
                if not _send_failed(exc):
                    raise
                out.extend(self.core.unreachable(msg[0], time.monotonic()))

    def close(self) -> None:
        self.socket.close(linger=0)

    def __enter__(self) -> FreelanceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncFreelanceClient:
    """The asyncio model-3 client; same API as FreelanceClient, `await request(frames)`."""

    def __init__(
        self,
        *,
        timeout: float = REQUEST_TIMEOUT_S,
        ping_interval: float = PING_INTERVAL_S,
        server_ttl: float = SERVER_TTL_S,
        context: AsyncContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.core = FreelanceCore(ping_interval=ping_interval, server_ttl=server_ttl)
        self.context = context or AsyncContext.instance()
        self.socket = _new_client_socket(self.context)
        self._lock = asyncio.Lock()  # one request at a time shares the core

    def connect(self, endpoint: str) -> None:
        self.socket.connect(endpoint)
        self.core.add_server(endpoint)

    async def request(
        self, frames: Sequence[bytes] | bytes, *, timeout: float | None = None
    ) -> list:
        async with self._lock:
            core, sock = self.core, self.socket
            while await sock.poll(0):
                core.on_message(await sock.recv_multipart(), time.monotonic())
            core.begin(frames, self.timeout if timeout is None else timeout, time.monotonic())
            try:
                while True:
                    await self._send(core.tick(time.monotonic()))
                    if await sock.poll(max(1, int(core.timeout(time.monotonic()) * 1000))):
                        reply = core.on_message(await sock.recv_multipart(), time.monotonic())
                        if reply is not None:
                            return reply
            finally:
                core.pending = None  # cancelled: the next request starts clean

    async def _send(self, out: list[list[bytes]]) -> None:
        while out:
            msg = out.pop(0)
            try:
                await self.socket.send_multipart(msg, c.DONTWAIT)
            except ZMQError as exc:
                if not _send_failed(exc):
                    raise
                out.extend(self.core.unreachable(msg[0], time.monotonic()))

    def close(self) -> None:
        self.socket.close(linger=0)

    async def __aenter__(self) -> AsyncFreelanceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def answer(msg: list[bytes], handler: Handler) -> list[bytes] | None:
    """The server side of RFC 10 for one received message `[client, *frames]`."""
    if len(msg) == 2 and msg[1] == PING:
        return [msg[0], PONG]
    if len(msg) < 3:
        return None  # neither a ping nor a request (CCF + body): ignore it
    client, ccf, body = msg[0], msg[1], msg[2:]
    return [client, ccf, *handler(body)]


class FreelanceServer:
    """A sync RFC 10 server: answers PING with PONG and requests with `handler(body)`.

    Its routing id is `endpoint`, the address clients connect to; by default the resolved
    `bind` address (so `tcp://127.0.0.1:0` works), which must then not be a wildcard.
    """

    def __init__(
        self,
        bind: str,
        handler: Handler = echo,
        *,
        endpoint: str | None = None,
        context: Context | None = None,
    ) -> None:
        self.handler = handler
        self.context = context or Context.instance()
        self.socket = self.context.socket(c.ROUTER)
        self.socket.linger = 0
        if endpoint is not None:
            self.socket.setsockopt(c.ROUTING_ID, endpoint.encode())
        bound = self.socket.bind(bind)
        if endpoint is None:
            if _is_wildcard(bound):
                self.socket.close(linger=0)
                raise ValueError(f"bound to a wildcard ({bound}): give the public endpoint")
            # Set before any client can know the port, so every handshake carries it.
            endpoint = bound
            self.socket.setsockopt(c.ROUTING_ID, endpoint.encode())
        self.endpoint = endpoint
        self.bound = bound
        self.handled = 0
        self._running = False

    def run(self) -> None:
        self._running = True
        sock = self.socket
        log.info("listening %s", self.endpoint)
        while self._running:
            if not sock.poll(STOP_POLL_S * 1000):
                continue
            reply = answer(sock.recv_multipart(), self.handler)
            if reply is not None:
                sock.send_multipart(reply, c.DONTWAIT)  # a departed client: ROUTER drops it
                self.handled += 1

    def stop(self) -> None:
        """Ask run() to return; safe from a signal handler."""
        self._running = False

    def close(self) -> None:
        self.socket.close(linger=0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.patterns.freelance", description=__doc__.split("\n\n")[0]
    )
    common = verbose_option()
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("server", parents=[common], help="run an echo server")
    s.add_argument("--bind", default="tcp://127.0.0.1:5555", help="endpoint to bind")
    s.add_argument("--endpoint", help="public endpoint = routing id (default: the bound one)")
    k = sub.add_parser("client", parents=[common], help="send requests and print the replies")
    k.add_argument("--connect", action="append", required=True, help="a server (repeatable)")
    k.add_argument("--count", type=positive(int), default=1, help="requests to send")
    k.add_argument("--timeout-ms", type=positive(float), default=REQUEST_TIMEOUT_S * 1000)
    k.add_argument("message", nargs="*", default=["hello"], help="request frames")
    args = parser.parse_args(argv)
    # A client's stdout carries the replies: only warnings join them, unless -v.
    setup_logging(args.verbose, logging.INFO if args.role == "server" else logging.WARNING)
    ctx = Context()
    try:
        # Start-up only: an error while serving keeps its traceback (see demo_cli).
        if args.role == "server":
            with startup(parser.prog, args.bind):
                server = FreelanceServer(args.bind, endpoint=args.endpoint, context=ctx)
            stop_on_signals(server.stop)
            try:
                server.run()
            finally:
                server.close()
            return 0
        client = FreelanceClient(timeout=args.timeout_ms / 1000, context=ctx)
        with startup(parser.prog, *args.connect):
            for endpoint in args.connect:
                client.connect(endpoint)
        try:
            for _ in range(args.count):
                reply = client.request([m.encode() for m in args.message])
                print(" ".join(f.decode(errors="backslashreplace") for f in reply), flush=True)
        except RequestFailed as exc:
            print(f"{parser.prog}: failed: {exc}", file=sys.stderr)
            return 1
        finally:
            client.close()
        return 0
    finally:
        ctx.destroy(linger=0)


def _is_wildcard(endpoint: str) -> bool:
    """Was `endpoint` (as bind() resolved it) bound to every interface?"""
    host = endpoint.partition("://")[2].rpartition(":")[0].strip("[]")
    return host in ("0.0.0.0", "::")


if __name__ == "__main__":
    sys.exit(main())
