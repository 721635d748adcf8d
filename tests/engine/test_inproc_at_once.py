"""An inproc message is readable as soon as send() returns, as with libzmq's inproc.

The engine's inproc crossed the I/O loop: a `recv(NOBLOCK)` right after the send found the
message 0-1 times in 20 (libzmq: 20), and on the sync face a request/reply round trip over
inproc took 1.3-1.9 ms (libzmq: under 0.1), the loop's burst sweep holding each message. Now
the sender's own call hands a message over, and a reader that finds nothing has its inproc
senders hand over what they held back in a burst. Each case runs on both libraries.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import zmq as pyzmq
import zmq.asyncio as pyzmq_asyncio

import engine
import engine.asyncio
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

PAIRS = [
    ("PAIR", "PAIR"),
    ("PUSH", "PULL"),
    ("DEALER", "ROUTER"),
    ("REQ", "REP"),
    ("DEALER", "DEALER"),
]


def _joined(ctx: Any, lib: Any, sender: str, receiver: str, name: str) -> tuple[Any, Any]:
    bound = ctx.socket(getattr(lib, receiver))
    bound.bind(f"inproc://{name}")
    connected = ctx.socket(getattr(lib, sender))
    connected.connect(f"inproc://{name}")
    return connected, bound


@LIBS
@pytest.mark.parametrize(("sender_type", "receiver_type"), PAIRS)
def test_a_message_is_readable_when_send_returns(
    lib: Any, sender_type: str, receiver_type: str
) -> None:
    ctx = lib.Context()
    try:
        sender, receiver = _joined(ctx, lib, sender_type, receiver_type, f"at-once-{sender_type}")
        for i in range(50):
            sender.send(b"%d" % i)
            got = receiver.recv_multipart(lib.NOBLOCK)  # Again here is the failure
            assert got[-1] == b"%d" % i
            if receiver_type == "REP":
                receiver.send(b"ok")
                assert sender.recv(lib.NOBLOCK) == b"ok"
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_burst_is_all_readable_when_its_last_send_returns(lib: Any) -> None:
    ctx = lib.Context()
    try:
        push, pull = _joined(ctx, lib, "PUSH", "PULL", "at-once-burst")
        for _ in range(5):
            for i in range(500):  # under the high-water marks: no send waits
                push.send(b"%d" % i)
            assert [pull.recv(lib.NOBLOCK) for _ in range(500)] == [b"%d" % i for i in range(500)]
            with pytest.raises(lib.Again):
                pull.recv(lib.NOBLOCK)
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_sender_past_the_high_water_mark_goes_on_as_the_reader_takes(lib: Any) -> None:
    """A sender blocked at SNDHWM is woken when its messages move, whoever moves them (the
    reader's thread, when it finds nothing, hands over what the sender held back)."""
    ctx = lib.Context()
    total = 50_000
    try:
        push, pull = _joined(ctx, lib, "PUSH", "PULL", "at-once-hwm")
        push.setsockopt(lib.SNDTIMEO, 20_000)
        pull.setsockopt(lib.RCVTIMEO, 20_000)
        failure: list[BaseException] = []

        def send_all() -> None:
            try:
                for i in range(total):
                    push.send(b"%d" % i)
            except BaseException as exc:
                failure.append(exc)

        sender = threading.Thread(target=send_all)
        sender.start()
        received = [pull.recv() for _ in range(total)]
        sender.join(30)
        assert not failure and not sender.is_alive()
        assert received[0] == b"0" and received[-1] == b"%d" % (total - 1)
        assert len(set(received)) == total
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("lib", [engine.asyncio, pyzmq_asyncio], ids=["engine", "pyzmq"])
def test_asyncio_a_message_is_readable_when_send_returns(lib: Any) -> None:
    async def run() -> None:
        ctx = lib.Context()
        try:
            pull = ctx.socket(pyzmq.PULL)
            pull.bind("inproc://at-once-asyncio")
            push = ctx.socket(pyzmq.PUSH)
            push.connect("inproc://at-once-asyncio")
            for i in range(20):
                await push.send(b"%d" % i)
                assert await pull.recv(pyzmq.NOBLOCK) == b"%d" % i
            for i in range(300):
                await push.send(b"%d" % i)
            assert [await pull.recv(pyzmq.NOBLOCK) for _ in range(300)] == [
                b"%d" % i for i in range(300)
            ]
        finally:
            ctx.destroy(linger=0)

    asyncio.run(run())
