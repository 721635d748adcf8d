"""A socket's line to the ZAP handler (RFC 27) bound in its context at inproc://zeromq.zap.01.

As libzmq's session does, a socket reaches the handler over an inproc pipe pair with no
high-water mark, speaking as a REQ would (an empty delimiter, then the request). One ZapClient
serves all the connections of one socket: each request gets its own request id, and the reply
that carries it goes back to the connection that asked. Everything here runs on the socket's
I/O loop; replies the handler's loop delivers are handed over with call_soon_threadsafe.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

from .. import constants as c
from ..options import Options
from ..pipe import FlushQueue, Message, Pipe
from ..security.zap import ZAP_ENDPOINT, ZapRequest
from .inproc import InprocLink

#: Called with the reply frames (version onwards), or None when the handler went away.
ZapCallback = Callable[[list[bytes] | None], None]
ZAP_NAME = ZAP_ENDPOINT.removeprefix("inproc://")


class ZapClient:
    """The SocketPort and LinkHost of one socket's ZAP pipe."""

    socket_type = c.DEALER
    queues_before_connect = False

    def __init__(self, host: Any) -> None:
        self.loop = host.loop
        self.inproc = host.inproc
        self.same_thread = True  # we are only ever used on the loop
        self.port = self
        self.links: set[Any] = set()
        self.options = Options(sndhwm=0, rcvhwm=0)  # libzmq: no high-water mark on ZAP
        self.closed = False
        self.flusher = FlushQueue(self.loop.call_soon, same_thread=True)
        self._pipe: Pipe | None = None
        self._waiting: dict[bytes, ZapCallback] = {}
        self._ids = itertools.count(1)

    def request(self, request: ZapRequest, on_reply: ZapCallback) -> bytes | None:
        """Send `request`; returns its request id, or None when no handler is bound."""
        if self.closed:
            return None
        if self._pipe is None or self._pipe.closed:
            link = self.inproc.join_bound(self, ZAP_NAME, ZAP_ENDPOINT)
            if link is None:
                return None
            self._pipe = link.pipe
        request_id = str(next(self._ids)).encode()
        self._waiting[request_id] = on_reply
        frames = dataclasses.replace(request, request_id=request_id).to_frames()
        self._pipe.push([b"", *frames])
        return request_id

    def cancel(self, request_id: bytes) -> None:
        """The connection that asked is gone; its reply, if any, is dropped."""
        self._waiting.pop(request_id, None)

    def close(self) -> None:
        self.closed = True
        for link in list(self.links):
            if isinstance(link, InprocLink):
                link.close()
        self._fail_all()

    # -- LinkHost -------------------------------------------------------------------------------

    def emit(self, event: int, value: int, endpoint: str) -> None:
        pass

    # -- SocketPort -------------------------------------------------------------------------------

    def new_pipe(self, persistent: bool = False) -> Pipe:
        return Pipe(0, 0, self.flusher, persistent)

    def reader_busy(self, sender: Any) -> bool:
        return False  # replies are handed to the loop at once, whoever sends them

    def hold(self, sender: Any) -> None:
        pass  # nothing here reads to have it hand over: the loop's flush moves the replies

    def deliver(self, pipe: Pipe, batch: list[Message]) -> None:
        # Called on the handler socket's loop, which may be another thread's, or by the
        # handler's own thread (an inproc send is delivered by its sender).
        pipe.delivered += len(batch)
        pipe.consumed += len(batch)
        self.loop.call_soon_threadsafe(self._replies, batch)

    def attach(self, pipe: Pipe) -> None:
        pass

    def detach(self, pipe: Pipe) -> None:
        pipe.closed = True
        if pipe is self._pipe:
            self._pipe = None
            self.loop.call_soon_threadsafe(self._fail_all)

    def reattach(self, pipe: Pipe) -> None:
        pass

    def accepts_peer(self, pipe: Pipe) -> bool:
        return True

    def forget_peer(self, pipe: Pipe) -> None:
        pass

    def notify(self) -> None:
        pass

    # -- internals ----------------------------------------------------------------------------

    def _replies(self, batch: list[Message]) -> None:
        for msg in batch:
            # [delimiter, version, request id, ...]: anything else cannot be matched; dropped.
            if len(msg) < 3 or msg[0] != b"":
                continue
            callback = self._waiting.pop(msg[2], None)
            if callback is not None:
                callback(msg[1:])

    def _fail_all(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for callback in waiting.values():
            callback(None)
