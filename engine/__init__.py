"""Crossroads engine: a pure-Python ZeroMQ that speaks ZMTP 3.1 with libzmq peers.

`import engine as zmq` gives the pyzmq-shaped sync API; `engine.asyncio` mirrors zmq.asyncio.
"""

from __future__ import annotations

from . import devices, error
from .constants import *  # noqa: F403 - pyzmq exposes every constant at top level
from .constants import VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH, SocketOption, SocketType
from .constants import __all__ as _constant_names
from .devices import device, monitored_queue, proxy, proxy_steerable
from .errors import (
    Again,
    ContextTerminated,
    InterruptedSystemCall,
    NotDone,
    ZMQBaseError,
    ZMQBindError,
    ZMQError,
    ZMQVersionError,
    strerror,
)
from .face_frame import Frame, MessageTracker
from .poll import Poller, select, zmq_poll
from .security.keys import curve_available, curve_keypair, curve_public
from .security.z85 import decode as z85_decode
from .security.z85 import encode as z85_encode
from .sync import Context, Socket
from .utils.monitor import recv_monitor_message

#: The pyzmq release whose API this engine follows (pyzmq's `zmq.__version__`).
__version__ = "27.0.0"

Message = Frame
#: pyzmq's names for the sync face's classes (beside zmq.asyncio's).
SyncContext = Context
SyncSocket = Socket

__all__ = [
    "DRAFT_API",
    "Again",
    "Context",
    "ContextTerminated",
    "Frame",
    "InterruptedSystemCall",
    "Message",
    "MessageTracker",
    "NotDone",
    "Poller",
    "Socket",
    "SocketOption",
    "SocketType",
    "SyncContext",
    "SyncSocket",
    "ZMQBaseError",
    "ZMQBindError",
    "ZMQError",
    "ZMQVersionError",
    "__version__",
    "curve_keypair",
    "curve_public",
    "device",
    "devices",
    "error",
    "has",
    "monitored_queue",
    "proxy",
    "proxy_steerable",
    "pyzmq_version",
    "pyzmq_version_info",
    "recv_monitor_message",
    "select",
    "strerror",
    "z85_decode",
    "z85_encode",
    "zmq_poll",
    "zmq_version",
    "zmq_version_info",
    *_constant_names,
]


def pyzmq_version() -> str:
    """The pyzmq API version this engine follows, as pyzmq's zmq.pyzmq_version()."""
    return __version__


def pyzmq_version_info() -> tuple[int, ...]:
    return tuple(int(part) for part in __version__.split("."))


def zmq_version() -> str:
    """The libzmq version whose behaviour and numbers this engine follows."""
    return f"{VERSION_MAJOR}.{VERSION_MINOR}.{VERSION_PATCH}"


def zmq_version_info() -> tuple[int, int, int]:
    return (VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH)


#: pyzmq's flag for "the draft socket types and their API are available".
DRAFT_API = True


def has(capability: str) -> bool:
    """Which optional libzmq features this engine has (pyzmq's zmq.has)."""
    if capability == "curve":
        return curve_available()
    return capability in {"ipc", "pgm", "draft"}
