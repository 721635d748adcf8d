"""pyzmq's `zmq.error` module path: the same classes as engine.errors."""

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

__all__ = [
    "Again",
    "ContextTerminated",
    "InterruptedSystemCall",
    "NotDone",
    "ZMQBaseError",
    "ZMQBindError",
    "ZMQError",
    "ZMQVersionError",
    "strerror",
]
