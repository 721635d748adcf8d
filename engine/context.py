"""IOContext: what sockets of one context share, whichever face created them."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from . import constants as c
from .errors import ZMQError
from .sockets import SOCKET_CLASSES

if TYPE_CHECKING:
    from .sockets.base import SocketCore
    from .transport.inproc import InprocEndpoint


class IOContext:
    """The inproc name registry and the set of open sockets of one context."""

    def __init__(self) -> None:
        self.inproc: dict[str, SocketCore] = {}
        self.inproc_pending: dict[str, list[InprocEndpoint]] = {}
        self.sockets: set[SocketCore] = set()
        self.lock = threading.Lock()
        self.terminated = False
        self.max_sockets = 1023

    def create_socket(
        self, socket_type: int, loop: asyncio.AbstractEventLoop, same_thread: bool
    ) -> SocketCore:
        if self.terminated:
            raise ZMQError(c.ETERM)
        cls = SOCKET_CLASSES.get(socket_type)
        if cls is None:
            raise ZMQError(c.EINVAL, f"unknown socket type {socket_type}")
        with self.lock:
            if len(self.sockets) >= self.max_sockets:
                raise ZMQError(c.EMTHREAD, "too many open sockets (MAX_SOCKETS)")
            core = cls(self, loop, same_thread)
            self.sockets.add(core)
        return core

    def forget(self, core: SocketCore) -> None:
        with self.lock:
            self.sockets.discard(core)
