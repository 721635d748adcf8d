"""Crossroads engine: a pure-Python ZeroMQ that speaks ZMTP 3.1 with libzmq peers.

`import engine as zmq` gives the pyzmq-shaped sync API; `engine.asyncio` mirrors zmq.asyncio.
"""

from __future__ import annotations

from .constants import *  # noqa: F403 - pyzmq exposes every constant at top level
from .constants import SocketOption, SocketType
from .errors import Again, ContextTerminated, NotDone, ZMQBaseError, ZMQBindError, ZMQError
from .face import Frame

Message = Frame

__all__ = [
    "Again",
    "ContextTerminated",
    "Frame",
    "Message",
    "NotDone",
    "SocketOption",
    "SocketType",
    "ZMQBaseError",
    "ZMQBindError",
    "ZMQError",
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
