"""An asyncio Poller takes blocking (sync) sockets too, as pyzmq's does: it reports them ready
and wakes when one becomes ready while it waits.

The engine's asyncio Poller failed with AttributeError (`_waiters`) as soon as it had to wait
with a sync socket registered. The other way round, a blocking Poller cannot wait on an
asyncio socket here (that socket's event loop moves it, and the wait would block the loop's
thread), so it says so in a TypeError; with timeout 0 it answers, as pyzmq's does.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from typing import Any

import pytest

import engine
import engine.asyncio
from tests.engine.libkit import LIBS, WAIT_MS

pytestmark = pytest.mark.timeout(60)


def _pair(lib: Any, ctx: Any, name: str) -> tuple[Any, Any]:
    pull = ctx.socket(lib.PULL)
    pull.bind(f"inproc://{name}")
    push = ctx.socket(lib.PUSH)
    push.connect(f"inproc://{name}")
    return pull, push


@LIBS
def test_asyncio_poller_reports_a_ready_sync_socket(lib: Any) -> None:
    lib_asyncio = importlib.import_module(f"{lib.__name__}.asyncio")
    ctx = lib.Context()
    pull, push = _pair(lib, ctx, "ready-now")
    push.send(b"here")
    assert pull.poll(WAIT_MS)

    async def main() -> list[tuple[Any, int]]:
        poller = lib_asyncio.Poller()
        poller.register(pull, lib.POLLIN)
        return await poller.poll(WAIT_MS)

    try:
        assert asyncio.run(main()) == [(pull, lib.POLLIN)]
        assert pull.recv() == b"here"
    finally:
        ctx.destroy(0)


@LIBS
def test_asyncio_poller_wakes_for_a_sync_socket(lib: Any) -> None:
    lib_asyncio = importlib.import_module(f"{lib.__name__}.asyncio")
    ctx = lib.Context()
    pull, push = _pair(lib, ctx, "ready-later")
    sender = threading.Timer(0.1, push.send, (b"later",))

    async def main() -> tuple[list[tuple[Any, int]], list[tuple[Any, int]]]:
        poller = lib_asyncio.Poller()
        poller.register(pull, lib.POLLIN)
        nothing_yet = await poller.poll(20)
        sender.start()  # sends from another thread while the poll below waits
        return nothing_yet, await poller.poll(WAIT_MS)

    try:
        nothing_yet, woken = asyncio.run(main())
        assert nothing_yet == []
        assert woken == [(pull, lib.POLLIN)]
        assert pull.recv() == b"later"
    finally:
        sender.join()
        ctx.destroy(0)


@LIBS
def test_asyncio_poller_with_sync_and_asyncio_sockets(lib: Any) -> None:
    lib_asyncio = importlib.import_module(f"{lib.__name__}.asyncio")
    ctx = lib.Context()
    pull, push = _pair(lib, ctx, "mixed-sync")
    sender = threading.Timer(0.05, push.send, (b"sync side",))

    async def main() -> list[bool]:
        actx = lib_asyncio.Context()
        apull, apush = _pair(lib, actx, "mixed-async")
        poller = lib_asyncio.Poller()
        poller.register(pull, lib.POLLIN)
        poller.register(apull, lib.POLLIN)
        try:
            await apush.send(b"async side")
            first = dict(await poller.poll(WAIT_MS))
            await apull.recv()
            sender.start()  # the sync side, from another thread while the poll below waits
            second = dict(await poller.poll(WAIT_MS))
            return [apull in first, pull in second, apull in second]
        finally:
            actx.destroy(0)

    try:
        assert asyncio.run(main()) == [True, True, False]
    finally:
        sender.join()
        ctx.destroy(0)


def test_blocking_poller_refuses_to_wait_on_an_asyncio_socket() -> None:
    async def main() -> None:
        actx = engine.asyncio.Context()
        apull, apush = _pair(engine, actx, "blocking-poller")
        poller = engine.Poller()
        poller.register(apull, engine.POLLIN)
        try:
            assert poller.poll(0) == []
            await apush.send(b"x")
            await apull.poll(WAIT_MS)
            assert poller.poll(0) == [(apull, engine.POLLIN)]
            await apull.recv()
            with pytest.raises(TypeError, match=r"engine\.asyncio\.Poller"):
                poller.poll(10)
        finally:
            actx.destroy(0)

    asyncio.run(main())
