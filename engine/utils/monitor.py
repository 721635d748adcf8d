"""Reading socket-monitor events, as zmq.utils.monitor does."""

from __future__ import annotations

import struct
from typing import Any

from ..errors import ZMQError

_HEADER = struct.Struct("<HI")


def parse_monitor_message(msg: list[bytes]) -> dict[str, Any]:
    """Decode one event: {'event': int, 'value': int, 'endpoint': bytes}."""
    if len(msg) != 2 or len(msg[0]) != _HEADER.size:
        raise ZMQError(msg="not a monitor event message")
    event, value = _HEADER.unpack(msg[0])
    return {"event": event, "value": value, "endpoint": msg[1]}


def recv_monitor_message(socket: Any, flags: int = 0) -> dict[str, Any]:
    return parse_monitor_message(socket.recv_multipart(flags))
