"""Crossroads engine: a pure-Python ZeroMQ that speaks ZMTP 3.1 with libzmq peers.

`import engine as zmq` gives the pyzmq-shaped sync API; `engine.asyncio` mirrors zmq.asyncio.
"""

from __future__ import annotations

from . import devices, error
from .constants import *  # noqa: F403 - pyzmq exposes every constant at top level
from .constants import SocketOption, SocketType
from .devices import monitored_queue, proxy, proxy_steerable
from .errors import Again, ContextTerminated, NotDone, ZMQBaseError, ZMQBindError, ZMQError
from .face import Frame, MessageTracker
from .poll import Poller, select
from .sync import Context, Socket
from .utils.monitor import recv_monitor_message

Message = Frame

__all__ = [
    "Again",
    "Context",
    "ContextTerminated",
    "Frame",
    "Message",
    "MessageTracker",
    "NotDone",
    "Poller",
    "Socket",
    "SocketOption",
    "SocketType",
    "ZMQBaseError",
    "ZMQBindError",
    "ZMQError",
    "devices",
    "error",
    "monitored_queue",
    "proxy",
    "proxy_steerable",
    "recv_monitor_message",
    "select",
]


def zmq_version() -> str:
    from .constants import VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH

    return f"{VERSION_MAJOR}.{VERSION_MINOR}.{VERSION_PATCH}"


def zmq_version_info() -> tuple[int, int, int]:
    from .constants import VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH

    return (VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH)


def has(capability: str) -> bool:
    """Which optional libzmq features this engine has (pyzmq's zmq.has)."""
    return capability in {"ipc"}
