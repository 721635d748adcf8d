"""Shared helpers for the engine socket tests: transports, event-driven waits, raw TCP tools.

Every wait here is bounded by a deadline and wakes on an event (a message, a poll, a predicate
checked in a short polling loop); nothing sleeps to "let things settle".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, ParamSpec

import engine
from engine.asyncio import Context, Socket

P = ParamSpec("P")
#: conftest's `spawn` fixture: start `python <args>`, killed by PID at teardown.
Spawn = Callable[..., subprocess.Popen[str]]

TRANSPORTS = ("tcp", "ipc", "inproc")
STREAM_TRANSPORTS = ("tcp", "ipc")
#: Default bound on any single wait. Generous: the machine may be busy with other suites.
WAIT = 10.0

_names = itertools.count()


def async_test(timeout: float = 60.0) -> Callable[[Callable[P, Coroutine[Any, Any, None]]], Any]:
    """Run an async test function on a fresh event loop, failing cleanly after `timeout` s."""

    def decorate(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            asyncio.run(asyncio.wait_for(fn(*args, **kwargs), timeout))

        return run

    return decorate


class Net:
    """One context plus fresh addresses for one transport; cleans both up on exit."""

    def __init__(self, transport: str) -> None:
        self.transport = transport
        self.ctx = Context()
        # AF_UNIX paths are limited to ~107 bytes: keep the directory short.
        self.tmp = tempfile.mkdtemp(prefix="crx", dir="/tmp")

    def address(self) -> str:
        """A fresh address to bind (tcp port 0, a temp ipc path, a unique inproc name)."""
        n = next(_names)
        if self.transport == "tcp":
            return "tcp://127.0.0.1:0"
        if self.transport == "ipc":
            return f"ipc://{self.tmp}/s{n}.ipc"
        if self.transport == "inproc":
            return f"inproc://test-{n}-{time.monotonic_ns()}"
        raise ValueError(self.transport)

    def socket(self, socket_type: int, **options: Any) -> Socket:
        return self.ctx.socket(socket_type, **options)

    def bind(self, sock: Socket) -> str:
        """Bind `sock` to a fresh address; returns the resolved endpoint."""
        return sock.bind(self.address())

    async def close(self) -> None:
        self.ctx.destroy(linger=0)
        # Let aborted transports run connection_lost before the loop goes away.
        for _ in range(5):
            await asyncio.sleep(0)
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.asynccontextmanager
async def network(transport: str = "tcp") -> AsyncIterator[Net]:
    net = Net(transport)
    try:
        yield net
    finally:
        await net.close()


# -- waiting ----------------------------------------------------------------------------------


async def within(awaitable: Awaitable[Any], timeout: float = WAIT) -> Any:
    """Await with a deadline."""
    return await asyncio.wait_for(awaitable, timeout)


async def recv(sock: Socket, timeout: float = WAIT) -> list[bytes]:
    """The next whole message, within a deadline."""
    return await asyncio.wait_for(sock.recv_multipart(), timeout)


async def recv_n(sock: Socket, n: int, timeout: float = WAIT) -> list[list[bytes]]:
    """The next `n` messages, within one overall deadline."""

    async def gather() -> list[list[bytes]]:
        return [await sock.recv_multipart() for _ in range(n)]

    return await asyncio.wait_for(gather(), timeout)


async def wait_until(
    predicate: Callable[[], bool], timeout: float = WAIT, what: str = "condition"
) -> None:
    """Poll `predicate` every few ms until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


async def assert_quiet(sock: Socket, ms: int = 200) -> None:
    """Nothing is readable on `sock` for `ms` milliseconds (a negative check)."""
    assert await sock.poll(ms) == 0, f"unexpected message: {await sock.recv_multipart()!r}"


async def drain(sock: Socket) -> list[list[bytes]]:
    """Everything readable right now, without waiting."""
    out = []
    while True:
        try:
            out.append(await sock.recv_multipart(engine.DONTWAIT))
        except engine.Again:
            return out


async def sync_pubsub(
    pub: Socket, sub: Socket, probe: bytes = b"probe", timeout: float = WAIT
) -> None:
    """Publish `probe` until `sub` receives it: the subscription has then reached `pub`.

    `sub` must be subscribed to a prefix of `probe`. Other messages seen meanwhile are dropped.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pub.send(probe)
        if await sub.poll(20):
            while await sub.poll(0):
                if (await sub.recv_multipart()) == [probe]:
                    # Flush probes that were already in flight.
                    while await sub.poll(50):
                        await sub.recv_multipart()
                    return
    raise AssertionError("subscription never reached the publisher")


async def until_delivered(
    sender: Socket, receiver: Socket, probe: list[bytes], timeout: float = WAIT
) -> None:
    """Send `probe` repeatedly until `receiver` gets one (a connection is up end to end).

    Copies still in flight are read and discarded afterwards.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await sender.send_multipart(probe, engine.DONTWAIT)
        except engine.Again:
            pass
        if await receiver.poll(50):
            msg = await receiver.recv_multipart()
            assert msg[-len(probe) :] == probe, msg
            while await receiver.poll(100):
                await receiver.recv_multipart()
            return
    raise AssertionError("probe never delivered")


def link_count(sock: Socket) -> int:
    """White box: how many live connections the socket has (for connection-state waits)."""
    return sum(1 for link in sock._endpoints.links if not getattr(link, "closed", False))


def tcp_port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


class LaterEndpoint:
    """Where a test's server binds later, with nobody listening there meanwhile.

    A tcp port is kept bound, not listening (connects to it are refused), until
    :meth:`bind_now`, just before the server binds it: a port found free and let go up front
    can be taken in between by a socket of another test running beside this one (it was, in
    CI). An ipc or inproc endpoint is passed through."""

    def __init__(self, endpoint: str = "tcp") -> None:
        self._held: socket.socket | None = None
        if endpoint == "tcp":
            self._held = socket.socket()
            self._held.bind(("127.0.0.1", 0))
            endpoint = f"tcp://127.0.0.1:{self._held.getsockname()[1]}"
        self.endpoint = endpoint

    @property
    def port(self) -> int:
        return tcp_port(self.endpoint)

    def bind_now(self) -> str:
        """Let the port go, for the server about to bind it; returns the endpoint."""
        if self._held is not None:
            self._held.close()
            self._held = None
        return self.endpoint

    def __del__(self) -> None:
        if self._held is not None:
            self._held.close()


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# -- raw TCP tools ------------------------------------------------------------------------------


class AcceptCounter:
    """A plain TCP listener that times each accepted connection and closes it at once.

    With `hold_open`, it instead keeps each connection open, silent, until the client leaves:
    a TCP peer that never answers the ZMTP greeting.
    """

    def __init__(self, hold_open: bool = False) -> None:
        self.hold_open = hold_open
        self.accepts: list[float] = []
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self, port: int = 0) -> AcceptCounter:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepts.append(time.monotonic())
        if self.hold_open:
            self._held.append(writer)
            with contextlib.suppress(ConnectionError, OSError):
                await reader.read()
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._held:
                writer.transport.abort()
            await self._server.wait_closed()
            for _ in range(3):
                await asyncio.sleep(0)


class Proxy:
    """A TCP proxy that forwards both ways until frozen; then it stops reading and forwarding.

    A frozen proxy keeps its sockets open, so each side sees a live TCP connection to a peer
    that has gone quiet (and whose buffers fill up): the dead-peer case heartbeats exist for.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = False
        self.accepts = 0
        #: Chunks forwarded from the connecting side ("down") and from the bound side ("up").
        self.chunks = {"down": 0, "up": 0}
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._stopped = False
        self.port = 0

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    async def _on_client(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        self.accepts += 1
        self._writers.append(down_w)
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            down_w.transport.abort()
            return
        self._writers.append(up_w)
        if self._stopped:
            up_w.transport.abort()
            down_w.transport.abort()
            return
        for src, dst, side in ((down_r, up_w, "down"), (up_r, down_w, "up")):
            task = asyncio.get_running_loop().create_task(self._pump(src, dst, side))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, side: str) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                if self.frozen:
                    await asyncio.Event().wait()  # hold this chunk and read no more
                dst.write(data)
                self.chunks[side] += 1
        except (ConnectionError, OSError):
            pass
        if not self.frozen:
            dst.close()

    async def stop(self) -> None:
        """Close the listener and abort every proxied connection (no waiting on peers)."""
        self._stopped = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for w in self._writers:
            w.transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)


def same_verdict_as_libzmq(
    what: str, theirs: Callable[[], object], ours: Callable[[], object]
) -> None:
    """`theirs` (a call into pyzmq) and `ours` (the same call into the engine) both succeed, or
    both fail with EINVAL: the engine takes a setting exactly when libzmq does."""
    import zmq as pyzmq  # the reference peer, imported only by the tests that compare with it

    try:
        theirs()
        taken = True
    except pyzmq.ZMQError as exc:
        assert exc.errno == pyzmq.EINVAL, (what, exc)
        taken = False
    try:
        ours()
    except engine.ZMQError as exc:
        assert exc.errno == engine.EINVAL, (what, exc)
        assert not taken, f"{what}: libzmq takes it, the engine refused it"
        return
    assert taken, f"{what}: libzmq refuses it, the engine took it"


def same_option_verdicts_as_libzmq(
    option: str, type_names: Sequence[str], values: Sequence[int]
) -> None:
    """For each socket type: setsockopt(option, value) for each value, then getsockopt(option),
    taken or refused (EINVAL) by the engine exactly where libzmq takes or refuses them."""
    import zmq as pyzmq

    ours, theirs = engine.Context(), pyzmq.Context()
    try:
        number = getattr(engine, option)
        assert number == getattr(pyzmq, option)
        for name in type_names:
            mine, other = ours.socket(getattr(engine, name)), theirs.socket(getattr(pyzmq, name))
            for value in values:
                same_verdict_as_libzmq(
                    f"{name} {option} {value}",
                    lambda o=other, v=value: o.setsockopt(number, v),
                    lambda m=mine, v=value: m.setsockopt(number, v),
                )
            same_verdict_as_libzmq(
                f"{name} getsockopt {option}",
                lambda o=other: o.getsockopt(number),
                lambda m=mine: m.getsockopt(number),
            )
    finally:
        ours.destroy(linger=0)
        theirs.destroy(linger=0)


def monitor_events(
    lib: Any, watcher: Any, until: str | None, timeout_s: float, *poked: Any, detail: bool = False
) -> list[Any]:
    """A sync socket's monitor events, the engine's or libzmq's (`lib`: engine or pyzmq), up to
    and including the first named `until` (or all that come within `timeout_s`): their names,
    or (name, value, endpoint) with `detail`. Each of `poked` is asked for EVENTS meanwhile:
    libzmq's socket acts on its connections' news only when it is called."""
    if lib is engine:
        from engine.utils.monitor import recv_monitor_message as read
    else:
        from zmq.utils.monitor import recv_monitor_message as read
    deadline = time.monotonic() + timeout_s
    seen: list[Any] = []
    name: str | None = None
    while time.monotonic() < deadline and (name is None or name != until):
        for sock in poked:
            sock.getsockopt(lib.EVENTS)
        if watcher.poll(20):
            event = read(watcher)
            name = lib.Event(event["event"]).name
            seen.append((name, event["value"], event["endpoint"]) if detail else name)
    return seen


@contextlib.contextmanager
def zap_handler(lib: Any, ctx: Any, answer: Callable[[list[bytes]], list[bytes]]) -> Iterator[None]:
    """A ZAP handler (RFC 27) bound in ``ctx`` for the block: each request gets [version,
    request id, *answer(request)]. Its socket is made, used and closed in its own thread (a
    libzmq socket must not change threads)."""
    stop = threading.Event()
    bound = threading.Event()

    def serve() -> None:
        handler = ctx.socket(lib.REP)
        handler.setsockopt(lib.LINGER, 0)
        handler.bind("inproc://zeromq.zap.01")
        bound.set()
        try:
            while not stop.is_set():
                if handler.poll(20):
                    request = handler.recv_multipart()
                    handler.send_multipart([request[0], request[1], *answer(request)])
        finally:
            handler.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert bound.wait(WAIT)
    try:
        yield
    finally:
        stop.set()
        thread.join(WAIT)
