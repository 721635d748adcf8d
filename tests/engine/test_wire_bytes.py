"""ZMTP on the wire, byte by byte: raw asyncio streams (and the sans-I/O codec) against the engine.

The expected bytes here are written out by hand (and match what libzmq 4.3 sends), never built
with the engine's own encoder, so a shared mistake cannot hide.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

import engine
import engine.asyncio
from engine.zmtp import ZMTPConnection

pytestmark = pytest.mark.timeout(60)

WAIT_S = 10.0

# -- golden bytes -------------------------------------------------------------------------------

GOLDEN_GREETING = (
    bytes.fromhex("ff 00 00 00 00 00 00 00 00 7f")  # signature
    + bytes.fromhex("03 01")  # version 3.1
    + b"NULL" + bytes(16)  # mechanism, padded to 20
    + b"\x00"  # as-server
    + bytes(31)  # filler
)  # fmt: skip
assert len(GOLDEN_GREETING) == 64

#: READY commands as libzmq 4.3 sends them: flags 0x04, size, "\x05READY", then properties.
GOLDEN_READY = {
    "PUB": bytes.fromhex("0419 05 5245414459 0b 536f636b65742d54797065 00000003 505542"),
    "SUB": bytes.fromhex("0419 05 5245414459 0b 536f636b65742d54797065 00000003 535542"),
    "PAIR": bytes.fromhex("041a 05 5245414459 0b 536f636b65742d54797065 00000004 50414952"),
    "REQ": bytes.fromhex(
        "0426 05 5245414459 0b 536f636b65742d54797065 00000003 52455108 4964656e74697479 00000000"
    ),
    "ROUTER": bytes.fromhex(
        "0429 05 5245414459 0b 536f636b65742d54797065 00000006 524f55544552"
        "08 4964656e74697479 00000000"
    ),
    "DEALER peer-1": bytes.fromhex(
        "042f 05 5245414459 0b 536f636b65742d54797065 00000006 4445414c4552"
        "08 4964656e74697479 00000006 706565722d31"
    ),
}

# -- a hand-written ZMTP encoder for the raw peer ---------------------------------------------


def frame(body: bytes, more: bool = False, command: bool = False) -> bytes:
    flags = (0x01 if more else 0) | (0x04 if command else 0)
    if len(body) > 255:
        return bytes((flags | 0x02,)) + len(body).to_bytes(8, "big") + body
    return bytes((flags, len(body))) + body


def command(name: bytes, body: bytes = b"") -> bytes:
    return frame(bytes((len(name),)) + name + body, command=True)


def prop(name: bytes, value: bytes) -> bytes:
    return bytes((len(name),)) + name + len(value).to_bytes(4, "big") + value


def ready(socket_type: str, identity: bytes | None = None) -> bytes:
    props = prop(b"Socket-Type", socket_type.encode())
    if identity is not None:
        props += prop(b"Identity", identity)
    return command(b"READY", props)


def greeting(minor: int = 1) -> bytes:
    return (
        b"\xff" + b"\x00" * 8 + b"\x7f" + bytes((3, minor)) + b"NULL".ljust(20, b"\x00") + bytes(32)
    )


def run(coro: Awaitable[None]) -> None:
    """Run one test body on a fresh event loop, bounded so a hang fails instead of blocking;
    any exception that reached the loop's handler (a crash in a callback) fails the test."""
    errors: list[dict[str, Any]] = []

    async def bounded() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        await asyncio.wait_for(coro, 50)

    asyncio.run(bounded())
    assert not errors, errors


# -- the raw peer -------------------------------------------------------------------------------


class RawPeer:
    """One end of a stream spoken to by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, endpoint: str) -> RawPeer:
        if endpoint.startswith("tcp://"):
            host, port = endpoint[6:].rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
        else:
            reader, writer = await asyncio.open_unix_connection(endpoint[6:])
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self, n: int, timeout: float = WAIT_S) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(n), timeout)

    async def read_frame(self, timeout: float = WAIT_S) -> tuple[int, bytes]:
        """(flags, body) of the next frame."""
        flags, size = await self.read(2, timeout)
        if flags & 0x02:
            size = int.from_bytes(bytes((size,)) + await self.read(7, timeout), "big")
        return flags, await self.read(size, timeout)

    async def read_raw_frame(self, timeout: float = WAIT_S) -> bytes:
        """The next frame as it was on the wire (short frames only)."""
        head = await self.read(2, timeout)
        return head + await self.read(head[1], timeout)

    async def handshake(
        self, socket_type: str, identity: bytes | None = None, minor: int = 1
    ) -> bytes:
        """Exchange greetings and READY; returns the engine's READY frame as sent."""
        assert await self.read(64) == GOLDEN_GREETING
        self.send(greeting(minor) + ready(socket_type, identity))
        return await self.read_raw_frame()

    async def expect_closed(self, timeout: float = WAIT_S) -> bytes:
        """Read until the engine closes the connection; returns what came before."""
        got = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"connection still open; got {bytes(got)!r}")
                with contextlib.suppress(TimeoutError):
                    data = await asyncio.wait_for(self.reader.read(65536), left)
                    if not data:
                        return bytes(got)
                    got += data
        except ConnectionError:
            return bytes(got)

    async def expect_silence(self, seconds: float) -> None:
        """Nothing at all arrives for `seconds` (a bounded observation window)."""
        with contextlib.suppress(TimeoutError):
            data = await asyncio.wait_for(self.reader.read(65536), seconds)
            raise AssertionError(f"unexpected bytes {data!r}")

    def close(self) -> None:
        self.writer.close()


class Env:
    """Engine and pyzmq sockets plus raw peers, all closed at the end."""

    def __init__(self) -> None:
        self.ctx = engine.asyncio.Context()
        self.zctx = zmq.asyncio.Context()
        self.sockets: list[Any] = []
        self.raws: list[RawPeer] = []

    def engine(self, socket_type: int, **options: Any) -> Any:
        sock = self.ctx.socket(socket_type, linger=0, **options)
        self.sockets.append(sock)
        return sock

    def pyzmq(self, socket_type: int) -> Any:
        sock = self.zctx.socket(socket_type)
        sock.linger = 0
        self.sockets.append(sock)
        return sock

    async def raw(self, endpoint: str) -> RawPeer:
        peer = await RawPeer.open(endpoint)
        self.raws.append(peer)
        return peer

    def close(self) -> None:
        for raw in self.raws:
            raw.close()
        for sock in self.sockets:
            sock.close(0)
        self.ctx.destroy(0)
        self.zctx.term()


@contextlib.asynccontextmanager
async def env() -> AsyncIterator[Env]:
    e = Env()
    try:
        yield e
    finally:
        e.close()


def bind(sock: Any, address: str = "tcp://127.0.0.1:*") -> str:
    sock.bind(address)
    return sock.getsockopt(zmq.LAST_ENDPOINT).decode()


async def recv(sock: Any, timeout: float = WAIT_S) -> list[bytes]:
    if not await sock.poll(int(timeout * 1000), zmq.POLLIN):
        raise AssertionError(f"no message within {timeout}s")
    return list(await sock.recv_multipart())


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


# -- greeting and READY -----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("socket_type", ["REQ", "ROUTER", "PUB", "SUB", "PAIR", "PUSH"])
def test_engine_binding_sends_golden_greeting_at_once(
    socket_type: str, transport: str, ipc_dir: Path
) -> None:
    """A raw client that sends nothing still receives the engine's whole 64-byte greeting."""

    async def body() -> None:
        async with env() as e:
            sock = e.engine(getattr(engine, socket_type))
            address = "tcp://127.0.0.1:*" if transport == "tcp" else f"ipc://{ipc_dir}/g.ipc"
            peer = await e.raw(bind(sock, address))
            assert await peer.read(10) == GOLDEN_GREETING[:10]
            assert await peer.read(54) == GOLDEN_GREETING[10:]

    run(body())


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("socket_type", ["REQ", "DEALER", "SUB", "PUSH"])
def test_engine_connecting_sends_golden_greeting_at_once(
    socket_type: str, transport: str, ipc_dir: Path
) -> None:
    """A raw server that sends nothing still receives the connecting engine's greeting."""

    async def body() -> None:
        accepted: asyncio.Queue[RawPeer] = asyncio.Queue()

        async def on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accepted.put(RawPeer(reader, writer))

        if transport == "tcp":
            server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
            endpoint = f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        else:
            path = f"{ipc_dir}/c.ipc"
            server = await asyncio.start_unix_server(on_accept, path)
            endpoint = f"ipc://{path}"
        try:
            async with env() as e:
                e.engine(getattr(engine, socket_type)).connect(endpoint)
                peer = await asyncio.wait_for(accepted.get(), WAIT_S)
                e.raws.append(peer)
                assert await peer.read(64) == GOLDEN_GREETING
        finally:
            server.close()

    run(body())


@pytest.mark.parametrize(
    ("case", "socket_type", "identity", "peer_type"),
    [
        ("PUB", "PUB", b"", "SUB"),
        ("SUB", "SUB", b"", "PUB"),
        ("PAIR", "PAIR", b"", "PAIR"),
        ("REQ", "REQ", b"", "REP"),
        ("ROUTER", "ROUTER", b"", "DEALER"),
        ("DEALER peer-1", "DEALER", b"peer-1", "ROUTER"),
    ],
)
def test_engine_sends_golden_ready(
    case: str, socket_type: str, identity: bytes, peer_type: str
) -> None:
    """READY on the wire: Socket-Type, plus Identity for REQ/DEALER/ROUTER, as libzmq."""

    async def body() -> None:
        async with env() as e:
            sock = e.engine(getattr(engine, socket_type))
            if identity:
                sock.routing_id = identity
            peer = await e.raw(bind(sock))
            assert await peer.handshake(peer_type) == GOLDEN_READY[case]

    run(body())


@pytest.mark.parametrize(
    ("case", "socket_type", "identity"),
    [
        ("PUB", engine.PUB, b""),
        ("REQ", engine.REQ, b""),
        ("ROUTER", engine.ROUTER, b""),
        ("DEALER peer-1", engine.DEALER, b"peer-1"),
    ],
)
def test_codec_golden_greeting_and_ready(case: str, socket_type: int, identity: bytes) -> None:
    """The codec alone: greeting first, READY once the peer's greeting is in."""
    codec = ZMTPConnection(socket_type, identity=identity)
    assert codec.data_to_send() == GOLDEN_GREETING
    assert codec.receive_data(greeting()) == []
    assert codec.data_to_send() == GOLDEN_READY[case]


def test_codec_answers_zmtp30_at_its_own_version() -> None:
    """A 3.0 peer still gets a 3.1 greeting (RFC 23: the lower version governs behaviour)."""
    codec = ZMTPConnection(engine.SUB)
    assert codec.data_to_send()[10:12] == b"\x03\x01"
    codec.receive_data(greeting(minor=0) + ready("PUB"))
    codec.receive_data(b"")
    (event,) = codec.pop_events()
    assert event.minor_version == 0
    codec.data_to_send()
    codec.send_messages([[b"\x01topic"]])
    assert codec.data_to_send() == b"\x00\x06\x01topic"
    assert codec.send_ping(10) is False


# -- ZMTP 3.0 peers and subscription forms -----------------------------------------------------


@pytest.mark.parametrize("minor", [0, 1], ids=["zmtp3.0", "zmtp3.1"])
def test_engine_sub_speaks_each_version_to_raw_publisher(minor: int) -> None:
    """To a 3.0 publisher, subscriptions are 0x01/0x00 messages and no PING is sent; a 3.1
    publisher gets SUBSCRIBE/CANCEL commands and PINGs."""

    async def body() -> None:
        async with env() as e:
            sub = e.engine(engine.SUB, heartbeat_ivl=50, heartbeat_timeout=10_000)
            sub.subscribe(b"early")
            peer = await e.raw(bind(sub))
            pending = asyncio.ensure_future(sub.recv_multipart())  # an application reading
            assert await peer.handshake("PUB", minor=minor) == GOLDEN_READY["SUB"]
            sub.subscribe(b"late")
            sub.unsubscribe(b"late")
            if minor == 0:
                assert await peer.read_raw_frame() == b"\x00\x06\x01early"
                assert await peer.read_raw_frame() == b"\x00\x05\x01late"
                assert await peer.read_raw_frame() == b"\x00\x05\x00late"
                await peer.expect_silence(0.6)  # twelve heartbeat intervals: no PING
            else:
                assert await peer.read_raw_frame() == b"\x04\x0f\x09SUBSCRIBEearly"
                assert await peer.read_raw_frame() == b"\x04\x0e\x09SUBSCRIBElate"
                assert await peer.read_raw_frame() == b"\x04\x0b\x06CANCELlate"
                flags, body = await peer.read_frame()
                assert flags == 0x04 and body.startswith(b"\x04PING")
                peer.send(command(b"PONG"))
            peer.send(frame(b"early", more=True) + frame(b"news"))
            assert await asyncio.wait_for(pending, WAIT_S) == [b"early", b"news"]

    run(body())


async def probe_until_received(pub: Any, peer: RawPeer, probe: bytes) -> None:
    """Publish `probe` until the raw subscriber reads it: the subscription is in force."""
    deadline = time.monotonic() + WAIT_S
    while True:
        await pub.send(probe)
        with contextlib.suppress(TimeoutError):
            if await peer.read_raw_frame(timeout=0.05) == frame(probe):
                return
        assert time.monotonic() < deadline, "subscription never took effect"


async def read_skipping(peer: RawPeer, probe: bytes) -> bytes:
    """The next raw frame that is not a left-over probe."""
    while (raw := await peer.read_raw_frame()) == frame(probe):
        pass
    return raw


@pytest.mark.parametrize("socket_type", ["XPUB", "PUB"])
def test_engine_publisher_accepts_both_subscription_forms(socket_type: str) -> None:
    """A 3.1 subscriber may subscribe with a SUBSCRIBE command or a 0x01 message (and cancel
    with CANCEL or 0x00); the publisher filters by both."""

    async def body() -> None:
        async with env() as e:
            is_xpub = socket_type == "XPUB"
            pub = e.engine(getattr(engine, socket_type))
            peer = await e.raw(bind(pub))
            await peer.handshake("SUB")
            peer.send(command(b"SUBSCRIBE", b"cmd") + frame(b"\x01msg"))
            if is_xpub:
                assert await recv(pub) == [b"\x01cmd"]
                assert await recv(pub) == [b"\x01msg"]
            await probe_until_received(pub, peer, b"msg-probe")
            await pub.send(b"zzz-filtered")
            await pub.send(b"cmd-1")
            await pub.send(b"msg-1")
            assert await read_skipping(peer, b"msg-probe") == frame(b"cmd-1")
            assert await peer.read_raw_frame() == frame(b"msg-1")
            peer.send(command(b"CANCEL", b"cmd") + frame(b"\x00msg") + command(b"SUBSCRIBE", b"z"))
            if is_xpub:
                assert await recv(pub) == [b"\x00cmd"]
                assert await recv(pub) == [b"\x00msg"]
                assert await recv(pub) == [b"\x01z"]
            else:  # the CANCELs precede this SUBSCRIBE on the wire
                await probe_until_received(pub, peer, b"z-probe")
            await pub.send(b"cmd-2")
            await pub.send(b"msg-2")
            await pub.send(b"z-end")
            assert await read_skipping(peer, b"z-probe") == frame(b"z-end")

    run(body())


def test_zmtp30_subscriber_to_engine_xpub() -> None:
    """A 3.0 subscriber subscribes with 0x01 messages, gets data, and is never PINGed."""

    async def body() -> None:
        async with env() as e:
            xpub = e.engine(engine.XPUB, heartbeat_ivl=50)
            peer = await e.raw(bind(xpub))
            await peer.handshake("SUB", minor=0)
            peer.send(frame(b"\x01news"))
            assert await recv(xpub) == [b"\x01news"]
            await xpub.send_multipart([b"news", b"x" * 300])
            assert await peer.read_frame() == (0x01, b"news")
            assert await peer.read_frame() == (0x02, b"x" * 300)
            await peer.expect_silence(0.6)

    run(body())


# -- heartbeat commands ---------------------------------------------------------------------------


@pytest.mark.parametrize("context", [b"", b"ctx123", b"0123456789abcdef"])
def test_engine_echoes_ping_context_in_pong(context: bytes) -> None:
    """PING (TTL, context) from a 3.1 peer is answered by PONG carrying the same context."""

    async def body() -> None:
        async with env() as e:
            sock = e.engine(engine.DEALER)
            peer = await e.raw(bind(sock))
            await peer.handshake("DEALER")
            peer.send(command(b"PING", b"\x00\x0a" + context))
            expected = b"\x04" + bytes((5 + len(context),)) + b"\x04PONG" + context
            assert await peer.read_raw_frame() == expected

    run(body())


def test_engine_ping_carries_heartbeat_ttl() -> None:
    """HEARTBEAT_TTL goes out in deciseconds in the PING's first two bytes (RFC 37)."""

    async def body() -> None:
        async with env() as e:
            sock = e.engine(engine.DEALER, heartbeat_ivl=50, heartbeat_ttl=2500)
            peer = await e.raw(bind(sock))
            await peer.handshake("DEALER")
            assert await peer.read_raw_frame() == b"\x04\x07\x04PING\x00\x19"
            peer.send(command(b"PONG"))

    run(body())


# -- handshake rejections ---------------------------------------------------------------------

COMPATIBLE_PEER = {
    "REP": "REQ",
    "PUB": "SUB",
    "PULL": "PUSH",
    "ROUTER": "DEALER",
    "PAIR": "PAIR",
    "SUB": "PUB",
    "REQ": "REP",
    "PUSH": "PULL",
}


def is_error_command(raw: bytes) -> bool:
    return len(raw) >= 8 and raw[0] == 0x04 and raw[2:8] == b"\x05ERROR"


@pytest.mark.parametrize(
    ("socket_type", "peer_type"),
    [
        ("REP", "PUB"),
        ("PUB", "PUSH"),
        ("PULL", "PULL"),
        ("ROUTER", "SUB"),
        ("PAIR", "DEALER"),
        ("SUB", "SUB"),
        ("REQ", "REQ"),
        ("PUSH", "XPUB"),
        ("DEALER", "NOSUCHTYPE"),
    ],
)
def test_incompatible_socket_type_gets_error_and_disconnect(
    socket_type: str, peer_type: str
) -> None:
    """READY with an incompatible Socket-Type: ERROR command, then the connection closes; the
    socket goes on accepting compatible peers."""

    async def body() -> None:
        async with env() as e:
            sock = e.engine(getattr(engine, socket_type))
            ep = bind(sock)
            bad = await e.raw(ep)
            await bad.handshake(peer_type)
            assert is_error_command(await bad.expect_closed())
            good = await e.raw(ep)
            compatible = COMPATIBLE_PEER.get(socket_type, "ROUTER")
            await good.handshake(compatible)
            await good.expect_silence(0.05)  # still connected

    run(body())


def test_identity_starting_with_zero_is_rejected() -> None:
    """RFC 23 reserves identities starting with 0x00: ERROR and disconnect; a normal identity
    on the same ROUTER then routes both ways."""

    async def body() -> None:
        async with env() as e:
            router = e.engine(engine.ROUTER)
            ep = bind(router)
            bad = await e.raw(ep)
            await bad.handshake("DEALER", identity=b"\x00bad")
            assert is_error_command(await bad.expect_closed())
            good = await e.raw(ep)
            await good.handshake("DEALER", identity=b"good")
            good.send(frame(b"hi"))
            assert await recv(router) == [b"good", b"hi"]
            await router.send_multipart([b"good", b"back"])
            assert await good.read_raw_frame() == frame(b"back")

    run(body())


# -- protocol violations after the handshake --------------------------------------------------

MAXMSGSIZE = 1000

VIOLATIONS = {
    "reserved-flag-0x08": b"\x08\x01x",
    "reserved-flag-0x80": b"\x80\x01x",
    "long-frame-over-maxmsgsize": b"\x02" + (5000).to_bytes(8, "big") + b"y" * 5000,
    "huge-declared-length": b"\x02" + (2**63).to_bytes(8, "big") + b"y" * 10,
    "command-inside-multipart": frame(b"part", more=True) + command(b"PING", b"\x00\x00"),
    "command-with-more-flag": b"\x05\x07\x04PING\x00\x00" + frame(b"x"),
    "empty-command": b"\x04\x00",
    "ready-after-handshake": ready("PUSH"),
}


@pytest.mark.parametrize("violation", list(VIOLATIONS))
def test_protocol_violation_closes_only_that_connection(violation: str) -> None:
    """Each violation closes the offending connection; nothing after it is delivered, and a
    well-behaved pyzmq peer on the same socket keeps working."""

    async def body() -> None:
        async with env() as e:
            pull = e.engine(engine.PULL, maxmsgsize=MAXMSGSIZE)
            ep = bind(pull)
            push = e.pyzmq(zmq.PUSH)
            push.connect(ep)
            await push.send(b"from pyzmq 1")
            assert await recv(pull) == [b"from pyzmq 1"]
            raw = await e.raw(ep)
            await raw.handshake("PUSH")
            raw.send(frame(b"before"))
            assert await recv(pull) == [b"before"]
            raw.send(VIOLATIONS[violation] + frame(b"never"))
            assert not is_error_command(await raw.expect_closed())
            await push.send(b"from pyzmq 2")
            assert await recv(pull) == [b"from pyzmq 2"]
            assert await pull.poll(50, zmq.POLLIN) == 0

    run(body())


def test_message_of_exactly_maxmsgsize_is_accepted() -> None:
    """MAXMSGSIZE drops peers sending messages *larger* than it; equal is fine (as libzmq)."""

    async def body() -> None:
        async with env() as e:
            pull = e.engine(engine.PULL, maxmsgsize=MAXMSGSIZE)
            ep = bind(pull)
            raw = await e.raw(ep)
            await raw.handshake("PUSH")
            raw.send(frame(b"m" * MAXMSGSIZE))
            assert await recv(pull, timeout=3) == [b"m" * MAXMSGSIZE]

    run(body())


def test_message_one_byte_over_maxmsgsize_is_rejected() -> None:
    """MAXMSGSIZE + 1 bytes: the connection is closed and the message never delivered."""

    async def body() -> None:
        async with env() as e:
            pull = e.engine(engine.PULL, maxmsgsize=MAXMSGSIZE)
            raw = await e.raw(bind(pull))
            await raw.handshake("PUSH")
            raw.send(frame(b"m" * (MAXMSGSIZE + 1)))
            await raw.expect_closed()
            assert await pull.poll(50, zmq.POLLIN) == 0

    run(body())
