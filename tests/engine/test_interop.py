"""Interop against real libzmq peers (pyzmq): the engine's asyncio face on either side.

Every compatible socket pair is run with the engine as each side, binding and connecting, over
tcp and ipc. Further tests check publisher-side filtering on the wire (through a byte-counting
TCP proxy), XPUB subscription messages, heartbeats in both directions, dead-peer detection and
reconnection to a pyzmq peer that is killed and restarted in a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio
from enginekit import Spawn

import engine
import engine.asyncio

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

#: Upper bound for any single wait on the network; generous for a loaded 2-core machine.
WAIT_S = 15.0
BIG = random.Random(1234).randbytes(10 * 1024 * 1024)
KIB64 = random.Random(5678).randbytes(64 * 1024)

#: Bodies exchanged by every pair: sizes around the short/long frame switch, empty frames,
#: multipart messages and one 10 MiB frame.
MESSAGES: list[list[bytes]] = [
    [b""],
    [b"s" * 255],
    [b"L" * 256],
    [KIB64],
    [b"head", b"", b"tail", b""],
    [b"", b"", b""],
    [b"a" * 255, b"b" * 256, b"", b"c"],
    [BIG],
]

Sock = Any  # an engine.asyncio.Socket or a zmq.asyncio.Socket: same coroutine API


def run(coro: Awaitable[None]) -> None:
    """Run one test body on a fresh event loop, bounded so a hang fails instead of blocking;
    any exception that reached the loop's handler (a crash in a callback) fails the test."""
    errors: list[dict[str, Any]] = []

    async def bounded() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        await asyncio.wait_for(coro, 80)

    asyncio.run(bounded())
    assert not errors, errors


# -- peers ------------------------------------------------------------------------------------


class Peers:
    """Creates engine and pyzmq sockets on the running loop and closes them all at the end."""

    def __init__(self) -> None:
        self.ectx = engine.asyncio.Context()
        self.zctx = zmq.asyncio.Context()
        self.sockets: list[Sock] = []

    def engine(self, socket_type: int) -> Sock:
        sock = self.ectx.socket(socket_type)
        sock.linger = 0
        self.sockets.append(sock)
        return sock

    def pyzmq(self, socket_type: int) -> Sock:
        sock = self.zctx.socket(socket_type)
        sock.linger = 0
        self.sockets.append(sock)
        return sock

    def make(self, is_engine: bool, socket_type: int) -> Sock:
        return self.engine(socket_type) if is_engine else self.pyzmq(socket_type)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close(0)
        self.ectx.destroy(0)
        self.zctx.term()


@contextlib.asynccontextmanager
async def peers() -> AsyncIterator[Peers]:
    p = Peers()
    try:
        yield p
    finally:
        p.close()


def bind(sock: Sock, address: str) -> str:
    """Bind and return the resolved endpoint, read back through LAST_ENDPOINT."""
    sock.bind(address)
    return sock.getsockopt(zmq.LAST_ENDPOINT).decode()


async def recv(sock: Sock, timeout: float = WAIT_S) -> list[bytes]:
    """One whole message, or fail after `timeout` seconds."""
    if not await sock.poll(int(timeout * 1000), zmq.POLLIN):
        raise AssertionError(f"no message within {timeout}s on {sock!r}")
    return list(await sock.recv_multipart())


async def recv_skipping(sock: Sock, skip: list[bytes], timeout: float = WAIT_S) -> list[bytes]:
    """The next message that is not `skip` (left-over probes)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv(sock, max(0.01, deadline - time.monotonic()))
        if msg != skip:
            return msg


async def until(pred: Callable[[], bool], timeout: float = WAIT_S, what: str = "") -> None:
    """Poll a condition with a deadline (the only place a short sleep is used)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.01)


async def probe_until_received(
    pub: Sock, sub: Sock, probe: list[bytes], timeout: float = WAIT_S
) -> None:
    """Publish `probe` until the subscriber gets one: the subscription has then propagated."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pub.send_multipart(probe)
        if await sub.poll(50, zmq.POLLIN):
            assert await sub.recv_multipart() == probe
            return
    raise AssertionError("subscription never propagated")


async def send_routed(router: Sock, msg: list[bytes], timeout: float = WAIT_S) -> None:
    """Send from a ROUTER_MANDATORY socket, retrying while the peer's route is not up yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await router.send_multipart(msg)
            return
        except (zmq.ZMQError, engine.ZMQError) as exc:
            if exc.errno != errno.EHOSTUNREACH or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.01)


# -- the matrix -------------------------------------------------------------------------------


async def exchange_req_rep(a: Sock, b: Sock) -> None:
    for body in MESSAGES:
        await a.send_multipart(body)
        assert await recv(b) == body
        await b.send_multipart(body)
        assert await recv(a) == body


async def exchange_req_router(a: Sock, b: Sock) -> None:
    for body in MESSAGES:
        await a.send_multipart(body)
        rid, delimiter, *got = await recv(b)
        assert delimiter == b"" and got == body and rid
        await b.send_multipart([rid, b"", *body])
        assert await recv(a) == body


async def exchange_dealer_rep(a: Sock, b: Sock) -> None:
    for body in MESSAGES:
        await a.send_multipart([b"", *body])
        assert await recv(b) == body
        await b.send_multipart(body)
        assert await recv(a) == [b"", *body]


async def exchange_dealer_router(a: Sock, b: Sock) -> None:
    for body in MESSAGES:
        await a.send_multipart(body)
        rid, *got = await recv(b)
        assert got == body and rid
        await b.send_multipart([rid, *body])
        assert await recv(a) == body


async def exchange_both_ways(a: Sock, b: Sock) -> None:
    for body in MESSAGES:
        await a.send_multipart(body)
        assert await recv(b) == body
        await b.send_multipart(body)
        assert await recv(a) == body


async def exchange_router_router(a: Sock, b: Sock) -> None:
    for body in MESSAGES:
        await send_routed(a, [b"B", *body])
        assert await recv(b) == [b"A", *body]
        await send_routed(b, [b"A", *body])
        assert await recv(a) == [b"B", *body]


async def exchange_push_pull(a: Sock, b: Sock) -> None:
    for body in MESSAGES:
        await a.send_multipart(body)
        assert await recv(b) == body


PROBE = [b"\xffprobe"]


async def publish_all(pub: Sock, sub: Sock) -> None:
    for body in MESSAGES:
        await pub.send_multipart(body)
        assert await recv_skipping(sub, PROBE) == body


async def exchange_pub_sub(a: Sock, b: Sock) -> None:
    b.subscribe(b"")
    await probe_until_received(a, b, PROBE)
    await publish_all(a, b)


async def exchange_pub_xsub(a: Sock, b: Sock) -> None:
    await b.send(b"\x01")  # XSUB subscribes by sending a message
    await probe_until_received(a, b, PROBE)
    await publish_all(a, b)


async def recv_subscription(xpub: Sock, sub: Sock, timeout: float = WAIT_S) -> list[bytes]:
    """Wait for a subscription message on XPUB while the subscriber polls its socket.

    A bound (libzmq or engine) subscriber only sends subscriptions to a newly accepted publisher
    once the application calls into the socket, so an idle subscriber must be kept polling.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await sub.poll(0, zmq.POLLIN)
        if await xpub.poll(20, zmq.POLLIN):
            return list(await xpub.recv_multipart())
    raise AssertionError("no subscription reached the XPUB")


async def exchange_xpub_sub(a: Sock, b: Sock) -> None:
    b.subscribe(b"")
    # XPUB sees the subscription: it is in force from now on.
    assert await recv_subscription(a, b) == [b"\x01"]
    await publish_all(a, b)


async def exchange_xpub_xsub(a: Sock, b: Sock) -> None:
    await b.send(b"\x01")
    assert await recv_subscription(a, b) == [b"\x01"]
    await publish_all(a, b)
    await b.send(b"\x00")
    assert await recv(a) == [b"\x00"]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    exchange: Callable[[Sock, Sock], Awaitable[None]]
    routing_ids: bool = False

    @property
    def id(self) -> str:
        return f"{self.a}-{self.b}"


PAIRS = [
    Pair("REQ", "REP", exchange_req_rep),
    Pair("REQ", "ROUTER", exchange_req_router),
    Pair("DEALER", "REP", exchange_dealer_rep),
    Pair("DEALER", "ROUTER", exchange_dealer_router),
    Pair("DEALER", "DEALER", exchange_both_ways),
    Pair("ROUTER", "ROUTER", exchange_router_router, routing_ids=True),
    Pair("PUB", "SUB", exchange_pub_sub),
    Pair("XPUB", "XSUB", exchange_xpub_xsub),
    Pair("PUB", "XSUB", exchange_pub_xsub),
    Pair("XPUB", "SUB", exchange_xpub_sub),
    Pair("PUSH", "PULL", exchange_push_pull),
    Pair("PAIR", "PAIR", exchange_both_ways),
]


@pytest.fixture
def ipc_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for ipc:// sockets whose paths fit in sun_path (108 bytes)."""
    if len(str(tmp_path)) < 80:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="xr-", dir="/tmp"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


def endpoint_for(transport: str, ipc_dir: Path, name: str = "s") -> str:
    return "tcp://127.0.0.1:*" if transport == "tcp" else f"ipc://{ipc_dir}/{name}.ipc"


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("binder", ["a_binds", "b_binds"])
@pytest.mark.parametrize("engine_side", ["engine_a", "engine_b"])
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.id)
def test_matrix(pair: Pair, engine_side: str, binder: str, transport: str, ipc_dir: Path) -> None:
    """Each pair exchanges every message in MESSAGES, whichever side the engine and binder are."""

    async def body() -> None:
        async with peers() as p:
            a = p.make(engine_side == "engine_a", getattr(zmq, pair.a))
            b = p.make(engine_side == "engine_b", getattr(zmq, pair.b))
            if pair.routing_ids:
                a.routing_id, b.routing_id = b"A", b"B"
                a.router_mandatory = b.router_mandatory = 1
            server, client = (a, b) if binder == "a_binds" else (b, a)
            client.connect(bind(server, endpoint_for(transport, ipc_dir)))
            await pair.exchange(a, b)

    run(body())


@pytest.mark.parametrize("engine_is", ["router", "dealer"])
def test_routing_ids_cross_to_libzmq(engine_is: str) -> None:
    """A DEALER's ROUTING_ID is the envelope the ROUTER sees, whichever side is the engine."""

    async def body() -> None:
        async with peers() as p:
            router = p.make(engine_is == "router", zmq.ROUTER)
            dealers = [p.make(engine_is == "dealer", zmq.DEALER) for _ in range(2)]
            ep = bind(router, "tcp://127.0.0.1:*")
            for name, dealer in zip([b"alice", b"bob"], dealers, strict=True):
                dealer.routing_id = name
                dealer.connect(ep)
                await dealer.send(b"hi from " + name)
                assert await recv(router) == [name, b"hi from " + name]
            for name, dealer in zip([b"bob", b"alice"], dealers[::-1], strict=True):
                await router.send_multipart([name, b"to " + name])
                assert await recv(dealer) == [b"to " + name]

    run(body())


@pytest.mark.parametrize("engine_is", ["push", "pull"])
def test_bulk_transfer_with_backpressure(engine_is: str) -> None:
    """Thousands of 8 KiB messages against small high-water marks: the sender blocks rather
    than drops, and every message arrives once, in order, intact."""
    count, size = 3000, 8192

    async def body() -> None:
        async with peers() as p:
            push = p.make(engine_is == "push", zmq.PUSH)
            pull = p.make(engine_is == "pull", zmq.PULL)
            push.sndhwm = pull.rcvhwm = 50
            pull.connect(bind(push, "tcp://127.0.0.1:*"))

            def message(i: int) -> list[bytes]:
                return [i.to_bytes(4, "big"), bytes((i % 251,)) * size]

            await push.send_multipart(message(0))  # waits for the connection
            # Without a reader, DONTWAIT sends soon hit the high-water marks.
            sent = 1
            while sent < count:
                try:
                    await push.send_multipart(message(sent), flags=zmq.DONTWAIT)
                except (zmq.Again, engine.Again):
                    break
                sent += 1
                await asyncio.sleep(0)  # let the loop write and read
            assert sent < count, "the sender never reached its high-water mark"

            async def produce() -> None:
                for i in range(sent, count):
                    await push.send_multipart(message(i))

            producer = asyncio.ensure_future(produce())
            try:
                for i in range(count):
                    seq, payload = await recv(pull)
                    assert int.from_bytes(seq, "big") == i
                    assert payload == bytes((i % 251,)) * size
                await asyncio.wait_for(producer, WAIT_S)
            finally:
                producer.cancel()

    run(body())


# -- a byte-counting TCP proxy ----------------------------------------------------------------


@dataclass
class ProxiedConnection:
    """One client connection through the proxy, with everything it carried each way."""

    up: bytearray = field(default_factory=bytearray)  # client -> server
    down: bytearray = field(default_factory=bytearray)  # server -> client
    frozen: bool = False
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)
    server_closed: asyncio.Event = field(default_factory=asyncio.Event)
    closed_first: str = ""  # "client" or "server": whose end of stream came first
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class Proxy:
    """Forwards tcp connections to a target, recording bytes; can freeze (black-hole) them."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.connections: list[ProxiedConnection] = []
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"tcp://127.0.0.1:{port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ProxiedConnection(writers=[writer])
        self.connections.append(conn)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            conn.client_closed.set()
            return
        conn.writers.append(up_writer)
        down = asyncio.ensure_future(self._pump(up_reader, writer, conn, conn.down))
        down.add_done_callback(lambda _: conn.server_closed.set())
        self._tasks.add(down)
        await self._pump(reader, up_writer, conn, conn.up)
        conn.client_closed.set()
        for w in conn.writers:
            w.close()

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        conn: ProxiedConnection,
        record: bytearray,
    ) -> None:
        try:
            while data := await src.read(65536):
                record += data
                if conn.frozen:
                    continue  # a silently frozen peer: bytes vanish, nothing is answered
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not conn.closed_first:
                conn.closed_first = "client" if record is conn.up else "server"
            dst.close()

    def freeze(self) -> None:
        for conn in self.connections:
            conn.frozen = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in self.connections:
            for w in conn.writers:
                w.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def tcp_port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


# -- publisher-side filtering, proved on the wire ---------------------------------------------

NOT_SUBSCRIBED_MARK = b"\xbbNOT-SUBSCRIBED\xbb"


async def check_filtering_on_wire(pub: Sock, sub: Sock, proxy: Proxy, pub_is_server: bool) -> None:
    """Publish many b"b..." then b"a-end" to a SUB of b"a"; no b"b" byte may cross the proxy."""
    sub.subscribe(b"a")
    await probe_until_received(pub, sub, [b"a-probe"])
    await until(lambda: len(proxy.connections) == 1, what="the proxied connection")
    conn = proxy.connections[0]

    def to_sub() -> bytearray:
        return conn.down if pub_is_server else conn.up

    before = len(to_sub())
    noise = b"b" + NOT_SUBSCRIBED_MARK + b"\xbb" * 1000
    for _ in range(300):
        await pub.send_multipart([noise, b"second frame"])
    await pub.send(b"a-end")
    assert await recv_skipping(sub, [b"a-probe"]) == [b"a-end"]
    crossed = len(to_sub()) - before
    # Only a-end (and maybe a late probe) crossed: a few dozen bytes, not 300 KiB.
    assert crossed < 200, f"{crossed} bytes crossed toward the subscriber"
    assert NOT_SUBSCRIBED_MARK not in to_sub()


def test_engine_pub_filters_before_the_wire() -> None:
    """engine PUB -> proxy -> pyzmq SUB: unsubscribed topics never leave the engine."""

    async def body() -> None:
        async with peers() as p:
            pub = p.engine(engine.PUB)
            port = tcp_port(bind(pub, "tcp://127.0.0.1:*"))
            proxy = Proxy("127.0.0.1", port)
            try:
                sub = p.pyzmq(zmq.SUB)
                sub.connect(await proxy.start())
                await check_filtering_on_wire(pub, sub, proxy, pub_is_server=True)
            finally:
                await proxy.close()

    run(body())


def test_pyzmq_pub_filters_for_engine_sub() -> None:
    """pyzmq PUB -> proxy -> engine SUB: the engine's subscription reaches libzmq's filter."""

    async def body() -> None:
        async with peers() as p:
            pub = p.pyzmq(zmq.PUB)
            port = tcp_port(bind(pub, "tcp://127.0.0.1:*"))
            proxy = Proxy("127.0.0.1", port)
            try:
                sub = p.engine(engine.SUB)
                sub.connect(await proxy.start())
                await check_filtering_on_wire(pub, sub, proxy, pub_is_server=True)
            finally:
                await proxy.close()

    run(body())


def test_engine_sub_binding_filtered_by_connecting_pyzmq_pub() -> None:
    """pyzmq PUB connects (through the proxy) to a binding engine SUB: still filtered upstream."""

    async def body() -> None:
        async with peers() as p:
            sub = p.engine(engine.SUB)
            port = tcp_port(bind(sub, "tcp://127.0.0.1:*"))
            proxy = Proxy("127.0.0.1", port)
            try:
                pub = p.pyzmq(zmq.PUB)
                pub.connect(await proxy.start())
                await check_filtering_on_wire(pub, sub, proxy, pub_is_server=False)
            finally:
                await proxy.close()

    run(body())


# -- XPUB subscription messages ---------------------------------------------------------------


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_engine_xpub_sees_pyzmq_subscriptions(verbose: bool) -> None:
    """Subscriptions from pyzmq SUBs reach an engine XPUB as b"\\x01topic"; duplicates only with
    XPUB_VERBOSE; the last unsubscribe arrives as b"\\x00topic"."""

    async def body() -> None:
        async with peers() as p:
            xpub = p.engine(engine.XPUB)
            if verbose:
                xpub.setsockopt(engine.XPUB_VERBOSE, 1)
            ep = bind(xpub, "tcp://127.0.0.1:*")
            sub1, sub2 = p.pyzmq(zmq.SUB), p.pyzmq(zmq.SUB)
            sub1.connect(ep)
            sub2.connect(ep)
            sub1.subscribe(b"topic")
            assert await recv(xpub) == [b"\x01topic"]
            sub2.subscribe(b"topic")
            sub2.subscribe(b"other")  # a marker: everything sub2 sent before it has arrived
            expected = [[b"\x01topic"], [b"\x01other"]] if verbose else [[b"\x01other"]]
            assert [await recv(xpub) for _ in expected] == expected
            # Both subscribers get matching data; the XPUB filters the rest.
            await xpub.send_multipart([b"topic", b"data"])
            await xpub.send(b"zzz-not-subscribed")
            await xpub.send(b"other-end")
            assert await recv(sub1) == [b"topic", b"data"]
            assert await recv(sub2) == [b"topic", b"data"]
            assert await recv(sub2) == [b"other-end"]
            sub1.unsubscribe(b"topic")
            sub2.unsubscribe(b"topic")
            sub2.unsubscribe(b"other")
            got = [await recv(xpub)]
            while got[-1] != [b"\x00other"]:
                got.append(await recv(xpub))
            # The cancel of b"topic" is reported once, when the last subscriber leaves it.
            assert got.count([b"\x00topic"]) == 1
            # A subscriber that goes away takes its subscriptions with it.
            sub1.subscribe(b"solo")
            assert await recv(xpub) == [b"\x01solo"]
            sub1.close(0)
            assert await recv(xpub) == [b"\x00solo"]

    run(body())


def test_pyzmq_xpub_sees_engine_subscriptions() -> None:
    """An engine SUB's subscriptions reach a libzmq XPUB (SUBSCRIBE/CANCEL commands)."""

    async def body() -> None:
        async with peers() as p:
            xpub = p.pyzmq(zmq.XPUB)
            xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
            ep = bind(xpub, "tcp://127.0.0.1:*")
            sub = p.engine(engine.SUB)
            sub.subscribe(b"early")  # before the connection: sent at handshake
            sub.connect(ep)
            pending = asyncio.ensure_future(sub.recv_multipart())  # the usual: a reader waits
            assert await recv(xpub) == [b"\x01early"]
            sub.subscribe(b"late")
            assert await recv(xpub) == [b"\x01late"]
            await xpub.send(b"late news")
            assert await asyncio.wait_for(pending, WAIT_S) == [b"late news"]
            sub.unsubscribe(b"late")
            assert await recv(xpub) == [b"\x00late"]

    run(body())


def test_idle_engine_sub_sends_subscriptions_after_connect() -> None:
    """subscribe(), connect(), then nothing else on the SUB: libzmq's XPUB still gets the
    subscription (as it does from a libzmq SUB), e.g. when it waits for it before publishing."""

    async def body() -> None:
        async with peers() as p:
            xpub = p.pyzmq(zmq.XPUB)
            ep = bind(xpub, "tcp://127.0.0.1:*")
            sub = p.engine(engine.SUB)
            sub.subscribe(b"early")
            sub.connect(ep)
            assert await recv(xpub, timeout=3) == [b"\x01early"]

    run(body())


# -- heartbeats -------------------------------------------------------------------------------

#: Wire forms of the heartbeat commands (RFC 37): flags 0x04, size, name-length, name.
PING = b"\x04\x07\x04PING"  # libzmq and the engine both send a TTL and no context
PONG = b"\x04\x05\x04PONG"


async def roundtrip(dealer: Sock, peer: Sock, tag: bytes) -> None:
    """DEALER -> DEALER/ROUTER peer -> back."""
    await dealer.send(tag)
    msg = await recv(peer)
    await peer.send_multipart(msg)
    assert await recv(dealer) == [tag]


@pytest.mark.parametrize("pinger", ["libzmq", "engine"])
def test_heartbeats_keep_one_connection_up(pinger: str) -> None:
    """The side with HEARTBEAT_IVL (libzmq or the engine) pings; the other side's PONGs keep
    one connection up."""

    async def body() -> None:
        async with peers() as p:
            make_server, make_client = (
                (lambda: p.engine(engine.DEALER), lambda: p.pyzmq(zmq.DEALER))
                if pinger == "libzmq"
                else (lambda: p.pyzmq(zmq.DEALER), lambda: p.engine(engine.DEALER))
            )
            server = make_server()
            port = tcp_port(bind(server, "tcp://127.0.0.1:*"))
            proxy = Proxy("127.0.0.1", port)
            try:
                client = make_client()
                client.heartbeat_ivl = 100
                client.heartbeat_timeout = 1000
                client.connect(await proxy.start())
                await roundtrip(client, server, b"hello")
                await until(lambda: len(proxy.connections) == 1)
                conn = proxy.connections[0]
                await until(
                    lambda: conn.up.count(PING) >= 5 and conn.down.count(PONG) >= 5,
                    what="five PING/PONG exchanges",
                )
                await roundtrip(client, server, b"still there")
                assert len(proxy.connections) == 1, f"{pinger} dropped and reconnected"
                assert not conn.client_closed.is_set()
            finally:
                await proxy.close()

    run(body())


def test_engine_drops_frozen_peer_and_reconnects() -> None:
    """The proxy stops forwarding: the engine's heartbeat times out, it drops the connection,
    reconnects, and messages flow again."""

    async def body() -> None:
        async with peers() as p:
            server = p.pyzmq(zmq.ROUTER)
            port = tcp_port(bind(server, "tcp://127.0.0.1:*"))
            proxy = Proxy("127.0.0.1", port)
            try:
                client = p.engine(engine.DEALER)
                client.heartbeat_ivl = 100
                client.heartbeat_timeout = 400
                client.connect(await proxy.start())
                await roundtrip(client, server, b"before")
                await until(lambda: len(proxy.connections) == 1)
                proxy.freeze()
                first = proxy.connections[0]
                await asyncio.wait_for(first.client_closed.wait(), WAIT_S)
                assert first.closed_first == "client", "the engine did not drop the connection"
                await until(lambda: len(proxy.connections) >= 2, what="a reconnection")
                await roundtrip(client, server, b"after")
            finally:
                await proxy.close()

    run(body())


def test_engine_honours_libzmq_heartbeat_ttl() -> None:
    """libzmq's PINGs carry HEARTBEAT_TTL: when the peer goes silent, the engine (with no
    heartbeat options of its own) drops the connection once the TTL passes."""

    async def body() -> None:
        async with peers() as p:
            server = p.engine(engine.DEALER)
            port = tcp_port(bind(server, "tcp://127.0.0.1:*"))
            proxy = Proxy("127.0.0.1", port)
            try:
                client = p.pyzmq(zmq.DEALER)
                client.heartbeat_ivl = 100
                client.heartbeat_ttl = 500
                client.heartbeat_timeout = 60_000  # libzmq itself must not give up first
                client.connect(await proxy.start())
                await roundtrip(client, server, b"hello")
                await until(lambda: len(proxy.connections) == 1)
                conn = proxy.connections[0]
                await until(lambda: conn.up.count(PING) >= 1, what="a PING with a TTL")
                proxy.freeze()
                await asyncio.wait_for(conn.server_closed.wait(), WAIT_S)
                assert conn.closed_first == "server", "libzmq closed first"
            finally:
                await proxy.close()

    run(body())


# -- subprocess peers: SIGSTOP and SIGKILL ----------------------------------------------------

PEER_SCRIPT = textwrap.dedent(
    """
    import os, sys, threading, time
    import zmq

    def watch_parent(parent):
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    kind, endpoint = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    pid = str(os.getpid()).encode()
    if kind == "dealer":  # connects with a fixed identity, says hello, then echoes
        sock = ctx.socket(zmq.DEALER)
        sock.routing_id = b"worker"
        sock.connect(endpoint)
        print(endpoint, flush=True)
        sock.send_multipart([b"hello", pid])
        while True:
            sock.send_multipart(sock.recv_multipart() + [pid])
    sock = ctx.socket(zmq.REP if kind == "rep" else zmq.PUB)
    sock.linger = 0
    sock.bind(endpoint)
    print(sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    if kind == "rep":
        while True:
            sock.send_multipart(sock.recv_multipart() + [pid])
    n = 0
    while True:  # a steady publisher: a tick every 10 ms
        sock.send_multipart([b"tick", pid, str(n).encode()])
        n += 1
        time.sleep(0.01)
    """
)


class PeerProcesses:
    """pyzmq peers in subprocesses, started by `spawn` (which kills them by PID at teardown)."""

    def __init__(self, spawn: Spawn) -> None:
        self.spawn = spawn

    async def start(self, kind: str, endpoint: str) -> tuple[subprocess.Popen[str], str]:
        proc = self.spawn("-c", PEER_SCRIPT, kind, endpoint)
        assert proc.stdout is not None
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), WAIT_S)
        assert line, f"peer exited early with {proc.poll()}"
        return proc, line.strip()

    def kill(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=WAIT_S)


@pytest.fixture
def subprocs(spawn: Spawn) -> PeerProcesses:
    return PeerProcesses(spawn)


async def ping_until_echoed(dealer: Sock, tag: bytes, timeout: float = WAIT_S) -> list[bytes]:
    """Send [b"", tag] to a REP peer until a reply to it arrives (retries cover messages lost
    in a connection that died); returns the reply's trailing frames (the peer's pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await dealer.send_multipart([b"", tag])
        while await dealer.poll(200, zmq.POLLIN):
            reply = await dealer.recv_multipart()
            if reply[:2] == [b"", tag]:
                return reply[2:]
    raise AssertionError(f"no echo of {tag!r}")


def test_engine_drops_sigstopped_peer_and_reconnects(subprocs: PeerProcesses) -> None:
    """A SIGSTOPped pyzmq peer stops answering PINGs: the engine drops the connection while the
    peer is still stopped, and after SIGCONT it reconnects and messages flow."""

    async def body() -> None:
        proc, ep = await subprocs.start("rep", "tcp://127.0.0.1:*")
        proxy = Proxy("127.0.0.1", tcp_port(ep))
        try:
            async with peers() as p:
                dealer = p.engine(engine.DEALER)
                dealer.heartbeat_ivl = 100
                dealer.heartbeat_timeout = 400
                dealer.connect(await proxy.start())
                assert await ping_until_echoed(dealer, b"one") == [str(proc.pid).encode()]
                os.kill(proc.pid, signal.SIGSTOP)
                try:
                    first = proxy.connections[0]
                    await asyncio.wait_for(first.client_closed.wait(), WAIT_S)
                    assert first.closed_first == "client", "the engine did not drop it"
                finally:
                    os.kill(proc.pid, signal.SIGCONT)
                assert await ping_until_echoed(dealer, b"two") == [str(proc.pid).encode()]
                assert len(proxy.connections) >= 2
        finally:
            await proxy.close()

    run(body())


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_engine_dealer_reconnects_to_restarted_rep(
    transport: str, subprocs: PeerProcesses, ipc_dir: Path
) -> None:
    """A pyzmq REP killed with SIGKILL and restarted on the same endpoint serves the engine's
    connecting DEALER again."""

    async def body() -> None:
        proc, ep = await subprocs.start("rep", endpoint_for(transport, ipc_dir))
        async with peers() as p:
            dealer = p.engine(engine.DEALER)
            dealer.connect(ep)
            assert await ping_until_echoed(dealer, b"first") == [str(proc.pid).encode()]
            subprocs.kill(proc)
            proc2, ep2 = await subprocs.start("rep", ep)
            assert ep2 == ep
            assert await ping_until_echoed(dealer, b"second") == [str(proc2.pid).encode()]

    run(body())


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_engine_sub_resubscribes_to_restarted_pub(
    transport: str, subprocs: PeerProcesses, ipc_dir: Path
) -> None:
    """A pyzmq PUB killed and restarted: the engine SUB reconnects, subscribes again and gets
    the new publisher's messages."""

    async def body() -> None:
        proc, ep = await subprocs.start("pub", endpoint_for(transport, ipc_dir))
        async with peers() as p:
            sub = p.engine(engine.SUB)
            sub.subscribe(b"tick")
            sub.connect(ep)
            tick, pid, _ = await recv(sub)
            assert (tick, pid) == (b"tick", str(proc.pid).encode())
            subprocs.kill(proc)
            proc2, _ = await subprocs.start("pub", ep)
            new_pid = str(proc2.pid).encode()
            deadline = time.monotonic() + WAIT_S
            while (await recv(sub))[1] != new_pid:
                assert time.monotonic() < deadline, "no message from the restarted publisher"

    run(body())


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_engine_router_takes_back_restarted_peer_with_same_identity(
    transport: str, subprocs: PeerProcesses, ipc_dir: Path
) -> None:
    """A pyzmq DEALER with a fixed ROUTING_ID is killed and restarted: the binding engine
    ROUTER lets the new connection have the identity and routes to it."""

    async def body() -> None:
        async with peers() as p:
            router = p.engine(engine.ROUTER)
            ep = bind(router, endpoint_for(transport, ipc_dir))
            for round_ in range(2):
                proc, _ = await subprocs.start("dealer", ep)
                pid = str(proc.pid).encode()
                deadline = time.monotonic() + WAIT_S
                while (msg := await recv(router)) != [b"worker", b"hello", pid]:
                    assert time.monotonic() < deadline, f"no hello from the new peer: {msg}"
                tag = b"ping-%d" % round_
                await router.send_multipart([b"worker", tag])
                assert await recv(router) == [b"worker", tag, pid]
                subprocs.kill(proc)

    run(body())


@pytest.mark.parametrize("engine_binds", [True, False], ids=["engine_binds", "engine_connects"])
def test_abstract_ipc_namespace(engine_binds: bool) -> None:
    """ipc://@name (Linux abstract sockets) meets libzmq's, both ways."""

    async def body() -> None:
        async with peers() as p:
            mine, theirs = p.engine(zmq.PAIR), p.pyzmq(zmq.PAIR)
            ep = f"ipc://@crossroads-test-{os.getpid()}-{random.getrandbits(32):08x}"
            server, client = (mine, theirs) if engine_binds else (theirs, mine)
            assert bind(server, ep) == ep
            client.connect(ep)
            await exchange_both_ways(mine, theirs)

    run(body())
