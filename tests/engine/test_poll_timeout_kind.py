"""A poll timeout of the wrong kind (a str) is a TypeError even when a socket is ready at
once, as pyzmq checks it before it polls, on both faces. The engine answered the ready socket
and looked at the timeout only when it had to wait."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest

from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)


@LIBS
def test_sync_poller_refuses_a_str_timeout_with_a_ready_socket(lib: Any) -> None:
    ctx = lib.Context()
    try:
        push = ctx.socket(lib.PUSH)
        push.bind("inproc://timeout-kind")
        pull = ctx.socket(lib.PULL)  # kept: a PUSH is writable while it has a peer
        pull.connect("inproc://timeout-kind")
        poller = lib.Poller()
        poller.register(push, lib.POLLOUT)
        assert poller.poll(0) == [(push, lib.POLLOUT)]  # ready at once
        with pytest.raises(TypeError):
            poller.poll("1")
    finally:
        ctx.destroy(0)


@LIBS
def test_asyncio_poller_refuses_a_str_timeout_with_a_ready_socket(lib: Any) -> None:
    lib_asyncio = importlib.import_module(f"{lib.__name__}.asyncio")

    async def main() -> None:
        ctx = lib_asyncio.Context()
        try:
            push = ctx.socket(lib.PUSH)
            push.bind("inproc://timeout-kind-async")
            pull = ctx.socket(lib.PULL)
            pull.connect("inproc://timeout-kind-async")
            poller = lib_asyncio.Poller()
            poller.register(push, lib.POLLOUT)
            assert await poller.poll(0) == [(push, lib.POLLOUT)]
            with pytest.raises(TypeError):
                await poller.poll("1")
        finally:
            ctx.destroy(0)

    asyncio.run(main())


@LIBS
def test_socket_poll_refuses_a_str_timeout_when_ready(lib: Any) -> None:
    ctx = lib.Context()
    try:
        push = ctx.socket(lib.PUSH)
        push.bind("inproc://timeout-kind-socket")
        pull = ctx.socket(lib.PULL)
        pull.connect("inproc://timeout-kind-socket")
        assert push.poll(0, lib.POLLOUT) == lib.POLLOUT
        with pytest.raises(TypeError):
            push.poll("1", lib.POLLOUT)
    finally:
        ctx.destroy(0)
