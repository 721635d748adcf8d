"""A flush of many big messages leaves in writes of about WRITE_CHUNK_BYTES, not one block.

Each write's bytes are one object; above glibc's mmap threshold every such block takes fresh
pages, so 1,000 queued 1 KiB messages written as one 1 MiB block cost more system time than
the messages themselves. The writes are counted where every byte of the sync face leaves: the
connection's transport (the user thread's direct writes, its burst writes and the loop's
flushes all go through it). The peer is libzmq, which must get every message, in order.
"""

from __future__ import annotations

import pytest

import engine
from engine.transport.link import FRAME_HEADER_MAX, WRITE_CHUNK_BYTES

zmq = pytest.importorskip("zmq", reason="pyzmq (the test extra) is the libzmq peer")

MESSAGES = 1000
SIZE = 1024


def test_a_burst_of_1_kib_messages_leaves_in_chunks(ctx: engine.Context) -> None:
    peer_ctx = zmq.Context()
    pull = peer_ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 0)
    pull.setsockopt(zmq.RCVTIMEO, 10_000)
    try:
        pull.bind("tcp://127.0.0.1:0")
        push = ctx.socket(engine.PUSH)
        push.setsockopt(engine.SNDHWM, 0)
        push.connect(pull.getsockopt(zmq.LAST_ENDPOINT).decode())
        push.send(b"ready?")
        assert pull.recv() == b"ready?"  # connected and past the handshake

        (link,) = push._endpoints.links
        transport = link.transport
        writes: list[int] = []
        real_write = transport.write

        def counted_write(data: bytes) -> None:
            writes.append(len(data))
            real_write(data)

        transport.write = counted_write
        bodies = [i.to_bytes(4, "big") * (SIZE // 4) for i in range(MESSAGES)]
        for body in bodies:
            push.send(body)
        for body in bodies:
            assert pull.recv() == body

        assert sum(writes) == MESSAGES * (SIZE + FRAME_HEADER_MAX)  # every byte counted
        # A chunk is cut after the message that reaches about WRITE_CHUNK_BYTES.
        assert max(writes) <= WRITE_CHUNK_BYTES + SIZE + FRAME_HEADER_MAX
        push.close(linger=0)
    finally:
        pull.close(linger=0)
        peer_ctx.term()
