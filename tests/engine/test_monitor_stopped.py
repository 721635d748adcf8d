"""MONITOR_STOPPED, the last event a monitor hears, as libzmq (pyzmq) sends it.

libzmq ends a monitor's stream with MONITOR_STOPPED (value 0, no endpoint) when the monitor is
disabled, replaced or its socket closed (after the socket's CLOSED events), if the monitor's
mask has it; pyzmq's examples read events until then. The engine never sent it, so such a loop
waited for ever. Each test runs the same code on both libraries.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import zmq as pyzmq
import zmq.asyncio
from enginekit import monitor_events

import engine
import engine.asyncio
from tests.engine.libkit import LIBS

pytestmark = pytest.mark.timeout(60)

WAIT_S = 10.0
#: How long a monitor is watched for an event it must not get.
QUIET_S = 0.25


def _read(lib: Any) -> Any:
    if lib is engine:
        from engine.utils.monitor import recv_monitor_message
    else:
        from zmq.utils.monitor import recv_monitor_message
    return recv_monitor_message


@LIBS
def test_disabling_a_monitor_ends_its_stream(lib: Any) -> None:
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PUB)
        watcher = sock.get_monitor_socket()
        sock.bind("tcp://127.0.0.1:0")
        assert monitor_events(lib, watcher, "LISTENING", WAIT_S, detail=True)[-1][0] == "LISTENING"
        sock.disable_monitor()
        assert monitor_events(lib, watcher, "MONITOR_STOPPED", WAIT_S, detail=True) == [
            ("MONITOR_STOPPED", 0, b"")
        ]
        sock.bind("tcp://127.0.0.1:0")
        assert monitor_events(lib, watcher, None, QUIET_S, detail=True) == []
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_closing_the_socket_sends_closed_then_monitor_stopped(lib: Any) -> None:
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PUB)
        watcher = sock.get_monitor_socket()
        endpoint = sock.bind("tcp://127.0.0.1:0")
        endpoint = sock.getsockopt(lib.LAST_ENDPOINT)
        assert monitor_events(lib, watcher, "LISTENING", WAIT_S, detail=True)[-1][0] == "LISTENING"
        sock.close(linger=0)
        names = [
            (name, where)
            for name, _, where in monitor_events(
                lib, watcher, "MONITOR_STOPPED", WAIT_S, detail=True
            )
        ]
        assert names == [("CLOSED", endpoint), ("MONITOR_STOPPED", b"")]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_replaced_monitor_hears_nothing_more_and_the_new_one_is_stopped(lib: Any) -> None:
    """libzmq (4.3.5) tells a monitor replaced by another nothing, not even MONITOR_STOPPED."""
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PUB)
        first = sock.get_monitor_socket()
        second = sock.get_monitor_socket(addr="inproc://second-monitor")
        sock.bind("tcp://127.0.0.1:0")
        assert monitor_events(lib, second, "LISTENING", WAIT_S, detail=True)[-1][0] == "LISTENING"
        assert monitor_events(lib, first, None, QUIET_S, detail=True) == []
        sock.monitor(None)
        assert monitor_events(lib, second, "MONITOR_STOPPED", WAIT_S, detail=True) == [
            ("MONITOR_STOPPED", 0, b"")
        ]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_mask_without_it_gets_no_monitor_stopped(lib: Any) -> None:
    ctx = lib.Context()
    try:
        sock = ctx.socket(lib.PUB)
        watcher = sock.get_monitor_socket(lib.EVENT_LISTENING | lib.EVENT_CLOSED)
        sock.bind("tcp://127.0.0.1:0")
        assert monitor_events(lib, watcher, "LISTENING", WAIT_S, detail=True)[-1][0] == "LISTENING"
        sock.close(linger=0)
        assert [
            name for name, _, _ in monitor_events(lib, watcher, None, QUIET_S, detail=True)
        ] == ["CLOSED"]
    finally:
        ctx.destroy(linger=0)


@LIBS
def test_a_thread_reading_until_monitor_stopped_ends(lib: Any) -> None:
    """pyzmq's idiom: read events on a thread until MONITOR_STOPPED, then close the watcher."""
    ctx = lib.Context()
    read = _read(lib)
    try:
        sock = ctx.socket(lib.DEALER)
        watcher = sock.get_monitor_socket()
        seen: list[str] = []

        def watch() -> None:
            while True:
                event = read(watcher)
                seen.append(lib.Event(event["event"]).name)
                if event["event"] == lib.EVENT_MONITOR_STOPPED:
                    break
            watcher.close()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        sock.connect("tcp://127.0.0.1:1")
        sock.close(linger=0)
        thread.join(WAIT_S)
        assert not thread.is_alive(), seen
        assert seen[-1] == "MONITOR_STOPPED"
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize(
    ("lib", "face"), [(engine, engine.asyncio), (pyzmq, zmq.asyncio)], ids=["engine", "pyzmq"]
)
def test_the_asyncio_face_sends_it_too(lib: Any, face: Any) -> None:
    async def run() -> list[Any]:
        ctx = face.Context()
        try:
            sock = ctx.socket(lib.PUB)
            watcher = sock.get_monitor_socket()
            sock.disable_monitor()
            frames = await asyncio.wait_for(watcher.recv_multipart(), WAIT_S)
            return [int.from_bytes(frames[0][:2], "little"), frames[1]]
        finally:
            ctx.destroy(linger=0)

    assert asyncio.run(run()) == [lib.EVENT_MONITOR_STOPPED, b""]
