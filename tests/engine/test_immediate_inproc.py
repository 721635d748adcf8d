"""IMMEDIATE and a connect made before anything is bound, against both libraries.

libzmq makes an inproc connection's pipe at connect() whatever IMMEDIATE says, so a message
sent before the bind waits in it and arrives once the name is bound; the engine honoured
IMMEDIATE there too, made no pipe, and the send said Again. Over tcp IMMEDIATE holds: no
pipe until the connection is up.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.engine.libkit import LIBS, WAIT_MS, all_queued


@LIBS
@pytest.mark.parametrize("kind", ["PUSH", "DEALER", "PAIR"])
def test_an_inproc_connect_queues_before_the_bind_even_with_immediate(
    lib: Any, kind: str, tmp_path: Any
) -> None:
    peer_kind = {"PUSH": "PULL", "DEALER": "ROUTER", "PAIR": "PAIR"}[kind]
    where = f"inproc://early-{tmp_path.name}"
    ctx = lib.Context()
    try:
        sender = ctx.socket(getattr(lib, kind))
        sender.setsockopt(lib.IMMEDIATE, 1)
        sender.setsockopt(lib.ROUTING_ID, b"early")
        sender.connect(where)
        sender.send(b"before the bind", lib.DONTWAIT)
        receiver = ctx.socket(getattr(lib, peer_kind))
        receiver.bind(where)
        assert receiver.poll(WAIT_MS)
        assert receiver.recv_multipart()[-1] == b"before the bind"
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_an_inproc_peer_not_yet_bound_gets_its_share_even_with_immediate(
    lib: Any, tmp_path: Any
) -> None:
    ctx = lib.Context()
    try:
        live = ctx.socket(lib.PULL)
        live.bind(f"inproc://live-{tmp_path.name}")
        push = ctx.socket(lib.PUSH)
        push.setsockopt(lib.IMMEDIATE, 1)
        push.connect(f"inproc://live-{tmp_path.name}")
        push.connect(f"inproc://absent-{tmp_path.name}")
        for n in range(10):
            push.send(b"%d" % n)
        assert len(all_queued(live)) == 5
        late = ctx.socket(lib.PULL)
        late.bind(f"inproc://absent-{tmp_path.name}")
        assert len(all_queued(late)) == 5
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_tcp_connect_with_immediate_takes_nothing_before_the_peer(lib: Any) -> None:
    # A port held but not listening: every connect to it is refused, and no other process
    # can take it meanwhile (a port freed by a closed socket could be, and was once in CI:
    # a parallel test's bind took it, the connect succeeded, and the send went through).
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    endpoint = f"tcp://127.0.0.1:{held.getsockname()[1]}"
    ctx = lib.Context()
    try:
        sender = ctx.socket(lib.PUSH)
        sender.setsockopt(lib.IMMEDIATE, 1)
        sender.connect(endpoint)
        with pytest.raises(lib.Again):
            sender.send(b"too early", lib.DONTWAIT)
    finally:
        ctx.destroy(linger=0)
        held.close()
