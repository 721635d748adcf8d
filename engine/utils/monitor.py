"""Reading socket-monitor events, as zmq.utils.monitor does (both faces)."""

from __future__ import annotations

import contextlib
import inspect
import struct
from typing import Any

from ..constants import Event
from ..errors import ZMQError

_HEADER = struct.Struct("<HI")


def parse_monitor_message(msg: list[bytes]) -> dict[str, Any]:
    """Decode one event: {'event': Event, 'value': Event, 'endpoint': bytes}.

    The value (a descriptor, an errno, an interval) is an `Event` too, only because pyzmq
    hands it out as one: it is an int all the same, and prints as pyzmq's does."""
    if len(msg) != 2 or len(msg[0]) != _HEADER.size:
        raise ZMQError(msg="not a monitor event message")
    event, value = _HEADER.unpack(msg[0])
    with contextlib.suppress(ValueError):  # pyzmq names the event; a number it lacks stays one
        event = Event(event)
    return {"event": event, "value": Event(value), "endpoint": msg[1]}


def recv_monitor_message(socket: Any, flags: int = 0) -> Any:
    """The next event; on an asyncio socket, an awaitable of it (as in pyzmq)."""
    msg = socket.recv_multipart(flags)
    if inspect.isawaitable(msg):
        return _parse_when_received(msg)
    return parse_monitor_message(msg)


async def _parse_when_received(msg: Any) -> dict[str, Any]:
    return parse_monitor_message(await msg)
