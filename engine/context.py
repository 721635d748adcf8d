"""IOContext: what the sockets of one context share, whichever face created them."""

from __future__ import annotations

import asyncio
import errno

from . import constants as c
from .errors import ContextTerminated, ZMQError
from .native import native_lock
from .sockets import SOCKET_CLASSES, SocketCore
from .transport import Endpoints, InprocRegistry

#: libzmq's default ZMQ_MAX_SOCKETS.
DEFAULT_MAX_SOCKETS = 1023


class IOContext:
    """The inproc names and the open sockets of one context."""

    def __init__(self) -> None:
        self.inproc = InprocRegistry()
        self.sockets: set[SocketCore] = set()
        self.lock = native_lock()
        self.terminated = False
        #: Terminated by destroy(), which closes every socket first: a later call on one is a
        #: call on a closed socket (ENOTSOCK), as in pyzmq, not one term() interrupted.
        self.destroyed = False
        self.max_sockets = DEFAULT_MAX_SOCKETS

    def create_socket(
        self, socket_type: int, loop: asyncio.AbstractEventLoop, same_thread: bool
    ) -> tuple[SocketCore, Endpoints]:
        """A socket of `socket_type` whose links live on `loop`, and its transport side."""
        if self.terminated:
            raise ContextTerminated()
        cls = SOCKET_CLASSES.get(socket_type)
        if cls is None:
            raise ZMQError(c.EINVAL, f"unknown socket type {socket_type}")
        with self.lock:
            if len(self.sockets) >= self.max_sockets:
                # (libzmq's errno here; EMTHREAD is for its I/O threads)
                raise ZMQError(errno.EMFILE, "too many open sockets (MAX_SOCKETS)")
            kick = loop.call_soon if same_thread else loop.call_soon_threadsafe
            core = cls(kick, same_thread)
            self.sockets.add(core)
        return core, Endpoints(core, loop, same_thread, self.inproc)

    def forget(self, core: SocketCore) -> None:
        with self.lock:
            self.sockets.discard(core)
