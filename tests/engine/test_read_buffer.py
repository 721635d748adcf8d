"""Reads go into a kept per-thread buffer: a short message costs no READ_SIZE allocation.

`sock.recv(READ_SIZE)` allocated READ_SIZE (then 256 KiB) per read (glibc: an mmap, an mremap and a munmap each
time), which a request/reply round trip paid on both sides. tracemalloc sees every allocation
of Python objects on every thread, so a peak far below READ_SIZE shows no read allocated one.
"""

from __future__ import annotations

import asyncio
import socket
import tracemalloc
from collections.abc import Iterator

import pytest

import engine
import engine.asyncio as azmq
from engine.transport.readbuf import READ_SIZE, read_buffer, recv_bytes

#: Below READ_SIZE, far above what a few short messages and their bookkeeping take.
PEAK_LIMIT = READ_SIZE // 2
ROUND_TRIPS = 20


@pytest.fixture
def tracing() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


def _peak_since_reset() -> int:
    return tracemalloc.get_traced_memory()[1]


def test_recv_bytes_returns_what_came_and_end_of_stream() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"hello")
        assert recv_bytes(b) == b"hello"
        big = bytes(range(256)) * (READ_SIZE // 256 + 10)
        a.setblocking(False)
        sent = a.send(big)
        got = b""
        while len(got) < sent:
            got += recv_bytes(b)
        assert got == big[:sent]
        assert len(read_buffer()) == READ_SIZE
        a.close()
        assert recv_bytes(b) == b""


def test_sync_round_trips_allocate_no_read_sized_block(ctx: engine.Context, tracing: None) -> None:
    rep = ctx.socket(engine.REP)
    rep.bind("tcp://127.0.0.1:0")
    req = ctx.socket(engine.REQ)
    req.connect(rep.getsockopt(engine.LAST_ENDPOINT).decode())
    req.send(b"warm")  # connection, handshake and both threads' buffers made before measuring
    rep.send(rep.recv())
    assert req.recv() == b"warm"
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(ROUND_TRIPS):
        req.send(b"q%d" % i)
        rep.send(rep.recv())
        assert req.recv() == b"q%d" % i
    assert _peak_since_reset() - base < PEAK_LIMIT


def test_asyncio_round_trips_allocate_no_read_sized_block(tracing: None) -> None:
    async def main() -> int:
        ctx = azmq.Context()
        rep = ctx.socket(engine.REP)
        rep.bind("tcp://127.0.0.1:0")
        req = ctx.socket(engine.REQ)
        req.connect(rep.getsockopt(engine.LAST_ENDPOINT).decode())
        try:
            await req.send(b"warm")
            await rep.send(await rep.recv())
            assert await req.recv() == b"warm"
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            for i in range(ROUND_TRIPS):
                await req.send(b"q%d" % i)
                await rep.send(await rep.recv())
                assert await req.recv() == b"q%d" % i
            return _peak_since_reset() - base
        finally:
            ctx.destroy(linger=0)

    assert asyncio.run(main()) < PEAK_LIMIT


GREENLETS_SHARE_ONE_BUFFER = """
from gevent import monkey

monkey.patch_all()
import gevent

from engine.transport.readbuf import read_buffer

seen = set()


def read() -> None:
    seen.add(id(read_buffer()))
    gevent.sleep(0)
    seen.add(id(read_buffer()))


gevent.joinall([gevent.spawn(read) for _ in range(50)])
print(len(seen))
"""


def test_greenlets_of_one_thread_share_its_buffer(spawn) -> None:  # type: ignore[no-untyped-def]
    """Under gevent (as Locust runs), 50 users in one thread must not make 50 buffers."""
    pytest.importorskip("gevent", reason="gevent comes with locust (the test extra)")
    proc = spawn("-c", GREENLETS_SHARE_ONE_BUFFER)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "1"
