"""Fuzzing the ZMTP decoder: random and mutated byte streams at the codec and at live sockets.

The codec may only ever raise ProtocolError. A listening engine socket fed the same bytes must
neither crash (no exception reaches the event loop) nor hang, and a well-behaved pyzmq peer on
that socket must keep working after every example.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import zmq
import zmq.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
import engine.asyncio
from engine.zmtp import ProtocolError, State, ZMTPConnection

pytestmark = pytest.mark.timeout(120)

WAIT_S = 10.0

# -- a hand-written encoder for valid streams ---------------------------------------------------


def frame(body: bytes, more: bool = False, command: bool = False) -> bytes:
    flags = (0x01 if more else 0) | (0x04 if command else 0)
    if len(body) > 255:
        return bytes((flags | 0x02,)) + len(body).to_bytes(8, "big") + body
    return bytes((flags, len(body))) + body


def command(name: bytes, body: bytes = b"") -> bytes:
    return frame(bytes((len(name),)) + name + body, command=True)


def message(frames: list[bytes]) -> bytes:
    return b"".join(frame(f, more=i < len(frames) - 1) for i, f in enumerate(frames))


def prop(name: bytes, value: bytes) -> bytes:
    return bytes((len(name),)) + name + len(value).to_bytes(4, "big") + value


def greeting(minor: int = 1) -> bytes:
    return (
        b"\xff" + b"\x00" * 8 + b"\x7f" + bytes((3, minor)) + b"NULL".ljust(20, b"\x00") + bytes(32)
    )


def ready(socket_type: str, identity: bytes | None) -> bytes:
    props = prop(b"Socket-Type", socket_type.encode())
    if identity is not None:
        props += prop(b"Identity", identity)
    return command(b"READY", props)


# -- strategies ---------------------------------------------------------------------------------

#: Engine socket type -> the peer type a valid stream announces.
PEER_OF = {
    engine.ROUTER: "DEALER",
    engine.PULL: "PUSH",
    engine.XPUB: "SUB",
    engine.SUB: "PUB",
    engine.REP: "REQ",
    engine.PAIR: "PAIR",
}

frames_st = st.lists(
    st.one_of(st.binary(max_size=40), st.binary(min_size=250, max_size=300)),
    min_size=1,
    max_size=4,
)


@dataclass
class Item:
    """One unit of a valid stream, with what the codec should make of it."""

    wire: bytes
    frames: list[bytes] | None = None  # a message
    subscription: bytes | None = None  # 0x01/0x00 + topic, as a publisher's codec reports it


@st.composite
def items_st(draw: st.DrawFn) -> Item:
    kind = draw(st.sampled_from(["message", "message", "ping", "pong", "sub", "cancel", "other"]))
    if kind == "message":
        frames = draw(frames_st)
        return Item(message(frames), frames=frames)
    if kind == "ping":
        ttl = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        return Item(command(b"PING", ttl + draw(st.binary(max_size=16))))
    if kind == "pong":
        return Item(command(b"PONG", draw(st.binary(max_size=16))))
    if kind in ("sub", "cancel"):
        topic = draw(st.binary(max_size=20))
        name = b"SUBSCRIBE" if kind == "sub" else b"CANCEL"
        mark = b"\x01" if kind == "sub" else b"\x00"
        return Item(command(name, topic), subscription=mark + topic)
    return Item(command(draw(st.sampled_from([b"X-FUTURE", b"HELLO", b"Z"])), b"body"))


@dataclass
class Stream:
    socket_type: int
    minor: int
    identity: bytes | None
    items: list[Item] = field(default_factory=list)

    @property
    def wire(self) -> bytes:
        head = greeting(self.minor) + ready(PEER_OF[self.socket_type], self.identity)
        return head + b"".join(i.wire for i in self.items)


@st.composite
def valid_stream(draw: st.DrawFn, socket_type: int | None = None) -> Stream:
    if socket_type is None:
        socket_type = draw(st.sampled_from(sorted(PEER_OF)))
    identity = draw(
        st.one_of(st.none(), st.binary(min_size=1, max_size=12).filter(lambda b: b[0] != 0))
    )
    minor = draw(st.sampled_from([0, 1]))
    return Stream(socket_type, minor, identity, draw(st.lists(items_st(), max_size=6)))


HUGE_HEADERS = [
    b"\x02" + (2**63).to_bytes(8, "big"),
    b"\x03" + (2**64 - 1).to_bytes(8, "big"),
    b"\x06" + (2**40).to_bytes(8, "big"),
    b"\x02" + (300 * 1024 * 1024).to_bytes(8, "big"),
    b"\x04\xff",
]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` after up to four random edits: flips, truncation, inserts, deletes, splices,
    duplicated ranges and frame headers declaring huge lengths."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = int(draw(st.floats(0, 1)) * len(buf))
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "splice", "huge"]))
        if op == "flip" and buf:
            at = min(at, len(buf) - 1)
            buf[at] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[at : at + draw(st.integers(1, 16))]
        elif op == "splice":
            start = int(draw(st.floats(0, 1)) * len(buf))
            buf[at:at] = buf[start : start + draw(st.integers(1, 64))]
        elif op == "huge":
            buf[at:at] = draw(st.sampled_from(HUGE_HEADERS))
    return bytes(buf)


@st.composite
def hostile_bytes(draw: st.DrawFn, socket_type: int | None = None) -> bytes:
    """Pure noise, noise after a valid greeting, a valid stream, or a mutated one."""
    kind = draw(st.sampled_from(["noise", "after-greeting", "valid", "mutated", "mutated"]))
    if kind == "valid":
        return draw(valid_stream(socket_type)).wire
    if kind == "noise":
        return draw(st.binary(max_size=400))
    if kind == "after-greeting":
        return greeting(draw(st.sampled_from([0, 1]))) + draw(st.binary(max_size=400))
    stream = draw(valid_stream(socket_type))
    return draw(mutated(stream.wire))


def chunked(data: bytes, cuts: list[float]) -> list[bytes]:
    points = sorted({int(c * len(data)) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# -- the codec alone ------------------------------------------------------------------------------


def feed(codec: ZMTPConnection, chunks: list[bytes]) -> tuple[list[list[bytes]], list[bytes]]:
    """Feed chunks like the link does; returns (messages, bytes the codec wrote)."""
    messages: list[list[bytes]] = []
    written = [codec.data_to_send()]
    for chunk in chunks:
        messages += codec.receive_data(chunk)
        codec.pop_events()
        if codec.state is State.TRAFFIC:
            codec.send_messages([[b"out"], [b"a", b"b" * 300]])
            codec.send_ping(10, b"ctx")
        written.append(codec.data_to_send())
    return messages, written


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    socket_type=st.sampled_from(sorted(PEER_OF)),
    max_size=st.sampled_from([-1, 0, 100, 1000]),
    cuts=st.lists(st.floats(0, 1), max_size=8),
)
def test_codec_raises_only_protocol_error(
    data: st.DataObject, socket_type: int, max_size: int, cuts: list[float]
) -> None:
    """Whatever the bytes, in whatever chunks, the codec returns or raises ProtocolError."""
    stream = data.draw(hostile_bytes(socket_type))
    codec = ZMTPConnection(socket_type, max_message_size=max_size)
    started = time.monotonic()
    try:
        messages, written = feed(codec, chunked(stream, cuts))
    except ProtocolError:
        return
    finally:
        assert time.monotonic() - started < 5, "the codec took too long"
    assert all(isinstance(m, list) and all(isinstance(f, bytes) for f in m) for m in messages)
    assert all(isinstance(w, bytes) for w in written)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=valid_stream(), cuts=st.lists(st.floats(0, 1), max_size=10))
def test_codec_decodes_valid_streams_in_any_chunking(stream: Stream, cuts: list[float]) -> None:
    """Unmutated streams decode to exactly the messages (and subscriptions) that were sent."""
    codec = ZMTPConnection(stream.socket_type)
    messages, _ = feed(codec, chunked(stream.wire, cuts))
    takes_subscriptions = stream.socket_type in (engine.PUB, engine.XPUB)
    expected: list[list[bytes]] = []
    for item in stream.items:
        if item.frames is not None:
            expected.append(item.frames)
        elif item.subscription is not None and takes_subscriptions:
            expected.append([item.subscription])
    assert messages == expected
    assert codec.peer_minor_version == stream.minor
    assert codec.peer_identity == (stream.identity or b"")


# -- live sockets ---------------------------------------------------------------------------------


class Target:
    """A listening engine socket on its own loop, plus a well-behaved pyzmq peer on it."""

    def __init__(self, socket_type: int) -> None:
        self.socket_type = socket_type
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, ctx: self.errors.append(ctx))
        self.counter = 0
        self.run(self._setup())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    async def _setup(self) -> None:
        self.ctx = engine.asyncio.Context()
        self.zctx = zmq.asyncio.Context()
        self.sock = self.ctx.socket(self.socket_type, linger=0)
        self.sock.bind("tcp://127.0.0.1:*")
        endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.port = int(endpoint.rsplit(":", 1)[1])
        good_type = {
            engine.ROUTER: zmq.DEALER,
            engine.PULL: zmq.PUSH,
            engine.XPUB: zmq.SUB,
            engine.SUB: zmq.PUB,
        }[self.socket_type]
        self.good = self.zctx.socket(good_type)
        self.good.linger = 0
        if self.socket_type == engine.ROUTER:
            self.good.routing_id = b"\xffgood"  # fuzzed identities are at most 12 bytes
        if self.socket_type == engine.XPUB:
            self.good.subscribe(b"\xffgood")
        if self.socket_type == engine.SUB:
            self.sock.subscribe(b"")
        self.good.connect(endpoint)
        await self.check_good_peer(timeout=WAIT_S)

    async def _drain_until(self, sock: Any, want: Callable[[list[bytes]], bool], timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await sock.poll(50, zmq.POLLIN):
                if want(list(await sock.recv_multipart())):
                    return True
            elif self.socket_type in (engine.SUB, engine.XPUB):
                return False  # published data may have been dropped: publish again
        return False

    async def check_good_peer(self, timeout: float = WAIT_S) -> None:
        """A round trip with the pyzmq peer, skipping whatever the fuzzers left queued."""
        self.counter += 1
        token = b"\xffgood-%d" % self.counter
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket_type in (engine.XPUB, engine.SUB):
                sender, receiver = (self.sock, self.good)
                if self.socket_type == engine.SUB:
                    sender, receiver = receiver, sender
                await sender.send(token)
                if await self._drain_until(receiver, lambda m: m == [token], 0.5):
                    return
                continue
            await self.good.send(token)
            if self.socket_type == engine.PULL:
                assert await self._drain_until(self.sock, lambda m: m == [token], timeout)
                return
            # ROUTER: the request, then the reply routed back by identity.
            assert await self._drain_until(self.sock, lambda m: m == [b"\xffgood", token], timeout)
            await self.sock.send_multipart([b"\xffgood", token])
            assert await self._drain_until(self.good, lambda m: m == [token], timeout)
            return
        raise AssertionError("the well-behaved pyzmq peer stopped working")

    async def attack(self, data: bytes, cut: float) -> None:
        """Send `data` on a fresh connection (in two writes), half-close, and wait for the
        engine to close it too."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            split = int(cut * len(data))
            writer.write(data[:split])
            await writer.drain()
            writer.write(data[split:])
            writer.write_eof()
            await writer.drain()
            deadline = time.monotonic() + WAIT_S
            with contextlib.suppress(ConnectionError):
                while await asyncio.wait_for(reader.read(65536), WAIT_S):
                    assert time.monotonic() < deadline, "the engine kept the connection open"
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def close(self) -> None:
        async def shutdown() -> None:
            self.good.close(0)
            self.sock.close(0)
            self.ctx.destroy(0)

        self.run(shutdown())
        self.zctx.term()
        self.loop.close()


@pytest.fixture(
    params=[engine.ROUTER, engine.PULL, engine.XPUB, engine.SUB],
    ids=["ROUTER", "PULL", "XPUB", "SUB"],
)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    t = Target(request.param)
    try:
        yield t
    finally:
        t.close()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), cut=st.floats(0, 1))
def test_socket_survives_hostile_bytes(target: Target, data: st.DataObject, cut: float) -> None:
    """Hostile bytes on one connection: the engine closes it, nothing reaches the loop's
    exception handler, and the pyzmq peer on the same socket still works."""
    stream = data.draw(hostile_bytes(target.socket_type))
    target.run(target.attack(stream, cut))
    target.run(target.check_good_peer())
    assert target.errors == [], target.errors
