"""A reader that polls before each recv gets every message, past its RCVHWM.

The engine's PULL and SUB take messages straight from the batch a link delivered, and a
finished batch was credited back to its link only by the next take. A reader that polls
first (a Poller, `sock.poll()`, EVENTS) took nothing more once the batch had ended, so a
link paused at RCVHWM waited for ever: such a PULL stopped after RCVHWM messages (10 of
200 here), on every transport. Each test runs the same lines against libzmq (pyzmq).
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from typing import Any

import pytest
from libkit import LIBS

pytestmark = pytest.mark.timeout(90)

TRANSPORTS = pytest.mark.parametrize("transport", ["tcp", "ipc", "inproc"])
TOTAL = 200
#: How long a poll waits before the reader concludes nothing more is coming (a stall).
QUIET_MS = 3000


def _endpoint(transport: str, tmp_path: Any, name: str) -> str:
    if transport == "tcp":
        return "tcp://127.0.0.1:0"
    if transport == "ipc":
        return f"ipc://{tmp_path}/{name}.ipc"
    return f"inproc://{name}"


def _reader_and_writer(lib: Any, ctx: Any, kind: str, endpoint: str) -> tuple[Any, Any]:
    reader = ctx.socket(lib.PULL if kind == "PULL" else lib.SUB)
    reader.setsockopt(lib.RCVHWM, 10)
    if kind == "SUB":
        reader.setsockopt(lib.SUBSCRIBE, b"")
    reader.bind(endpoint)
    writer = ctx.socket(lib.PUSH if kind == "PULL" else lib.PUB)
    writer.setsockopt(lib.SNDHWM, 10)
    if kind == "SUB":
        writer.setsockopt(lib.XPUB_NODROP, 1)  # the publisher waits, as a PUSH does
    writer.connect(reader.getsockopt(lib.LAST_ENDPOINT).decode())
    return reader, writer


def _send_all(lib: Any, writer: Any, kind: str, ready: Any) -> None:
    if kind == "SUB":
        while True:  # the subscription first (a NODROP publisher drops what no one takes)
            writer.send(b"hello?")
            if ready.wait(0.02):
                break
    for i in range(TOTAL):
        while True:
            try:
                writer.send(b"%d" % i, lib.DONTWAIT)
                break
            except lib.Again:
                writer.poll(100, lib.POLLOUT)


@LIBS
@TRANSPORTS
@pytest.mark.parametrize("kind", ["PULL", "SUB"])
@pytest.mark.parametrize("how", ["poller", "sock.poll"])
def test_a_reader_polling_before_each_recv_gets_everything(
    lib: Any, transport: str, kind: str, how: str, tmp_path: Any
) -> None:
    ctx = lib.Context()
    try:
        name = f"poll-{kind}-{how}-{transport}"
        reader, writer = _reader_and_writer(lib, ctx, kind, _endpoint(transport, tmp_path, name))
        ready = threading.Event()
        sender = threading.Thread(target=_send_all, args=(lib, writer, kind, ready))
        sender.start()
        poller = lib.Poller()
        poller.register(reader, lib.POLLIN)
        got = []
        while len(got) < TOTAL:
            found = poller.poll(QUIET_MS) if how == "poller" else reader.poll(QUIET_MS)
            if not found:
                break
            message = reader.recv()
            if message == b"hello?":
                ready.set()
                continue
            got.append(message)
        ready.set()
        sender.join(30)
        assert got == [b"%d" % i for i in range(TOTAL)]
    finally:
        ctx.destroy(linger=0)


@LIBS
@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_an_asyncio_reader_polling_before_each_recv_gets_everything(
    lib: Any, transport: str, tmp_path: Any
) -> None:
    aio = importlib.import_module(f"{lib.__name__}.asyncio")

    async def main() -> list[bytes]:
        ctx = aio.Context()
        try:
            reader, writer = _reader_and_writer(
                lib, ctx, "PULL", _endpoint(transport, tmp_path, "poll-aio")
            )
            got: list[bytes] = []

            async def send_all() -> None:
                for i in range(TOTAL):
                    await writer.send(b"%d" % i)

            sending = asyncio.ensure_future(send_all())
            poller = aio.Poller()
            poller.register(reader, lib.POLLIN)
            while len(got) < TOTAL and await poller.poll(QUIET_MS):
                got.append(await reader.recv())
            sending.cancel()
            return got
        finally:
            ctx.destroy(linger=0)

    assert asyncio.run(main()) == [b"%d" % i for i in range(TOTAL)]
