"""Transports: a socket's endpoints and connections, with one registry keyed by scheme.

`Endpoints` is one socket's transport side: what it bound and connected, its live links and its
monitor. Its methods run on the socket's I/O loop; the faces call them there. A transport is
anything with `bind(host, endpoint)` and `connect(host, endpoint)` returning an endpoint
handle; new ones (udp://, pgm://...) join `TRANSPORTS` under their scheme.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from .. import constants as c
from ..endpoint import Endpoint, parse
from ..errors import ZMQError
from ..pipe import Pipe, SocketPort
from ..security.options import check_security
from ..security.zap import ZapRequest
from . import inproc, pgm, stream, udp
from .inproc import InprocRegistry
from .zap import ZapCallback, ZapClient

#: A socket monitor: (event, value, endpoint), called on the I/O loop.
Monitor = Callable[[int, int, str], None]


class EndpointHandle(Protocol):
    """A bound or connected endpoint (Listener, Connecter, InprocEndpoint)."""

    endpoint: str
    #: A connect-side pipe that outlives connections, if the endpoint made one.
    pipe: Pipe | None

    def close(self, drop_links: bool = True, linger_ms: int = 0) -> None: ...


class Transport(Protocol):
    def bind(self, host: Any, endpoint: Endpoint) -> EndpointHandle: ...

    def connect(self, host: Any, endpoint: Endpoint) -> EndpointHandle: ...


TRANSPORTS: dict[str, Any] = {
    "tcp": stream,
    "ipc": stream,
    "inproc": inproc,
    "udp": udp,
    "pgm": pgm,
    "epgm": pgm,
}


class Endpoints:
    """One socket's transport side: the LinkHost its links and endpoints report to."""

    def __init__(
        self,
        port: SocketPort,
        loop: asyncio.AbstractEventLoop,
        same_thread: bool,
        inproc_names: InprocRegistry,
    ) -> None:
        self.port = port
        self.loop = loop
        self.same_thread = same_thread
        self.inproc = inproc_names
        #: endpoint string (as given, and as resolved) -> its handle
        self.handles: dict[str, EndpointHandle] = {}
        #: Live connections (and lingering connecters): closing and term() wait for them.
        self.links: set[Any] = set()
        #: Heartbeat wheels of this socket's stream links, by check period
        #: (heartbeats.HeartbeatWheel).
        self.heartbeats: dict[float, Any] = {}
        self.last_endpoint = ""
        self.monitor: Monitor | None = None
        #: The line to the context's ZAP handler, made when a handshake first needs it.
        self.zap: ZapClient | None = None

    def emit(self, event: int, value: int, endpoint: str) -> None:
        monitor = self.monitor
        if monitor is not None:
            monitor(event, value, endpoint)

    def zap_request(self, request: ZapRequest, on_reply: ZapCallback) -> bytes | None:
        """Ask the ZAP handler; None when none is bound (see ZapClient.request)."""
        if self.zap is None:
            self.zap = ZapClient(self)
        return self.zap.request(request, on_reply)

    def zap_cancel(self, request_id: bytes) -> None:
        if self.zap is not None:
            self.zap.cancel(request_id)

    def bind(self, address: str) -> str:
        ep = parse(address, binding=True)
        self._check_raw(ep)
        if ep.transport != "inproc":  # inproc has no handshake, so no security mechanism
            check_security(self.port.options)
        handle = _transport(ep).bind(self, ep)
        resolved = handle.endpoint
        self.handles[resolved] = handle
        if resolved != address:
            self.handles.setdefault(address, handle)
        self.last_endpoint = resolved
        return resolved

    def connect(self, address: str) -> None:
        ep = parse(address, binding=False)
        self._check_raw(ep)
        if ep.transport != "inproc":
            check_security(self.port.options)
        handle = _transport(ep).connect(self, ep)
        # LAST_ENDPOINT shows a connect as it was given, as libzmq's (a source address and a
        # port's leading zeros kept); disconnect finds it under either spelling.
        self.handles[address] = handle
        self.handles.setdefault(str(ep), handle)
        self.last_endpoint = address

    def _check_raw(self, ep: Endpoint) -> None:
        if self.port.socket_type == c.STREAM and ep.transport not in ("tcp", "ipc"):
            raise ZMQError(
                c.EPROTONOSUPPORT, "a STREAM socket carries raw bytes over tcp:// and ipc:// only"
            )

    def remove(self, address: str) -> None:
        """unbind() or disconnect()."""
        handle = self.handles.pop(address, None)
        if handle is None:
            handle = self._find_resolved(address)
        for key in [k for k, v in self.handles.items() if v is handle]:
            del self.handles[key]
        handle.close()
        pipe = handle.pipe
        if pipe is not None and pipe.persistent:
            self.port.detach(pipe)

    def _find_resolved(self, address: str) -> EndpointHandle:
        """As libzmq: an address not found as given is resolved (tcp://localhost:5555 is what
        LAST_ENDPOINT calls tcp://127.0.0.1:5555); an unknown transport is EPROTONOSUPPORT."""
        try:
            ep = parse(address, binding=True)
        except ZMQError as exc:
            if exc.errno == c.EPROTONOSUPPORT:
                raise
            ep = None
        if ep is not None and ep.transport == "tcp" and ep.port:  # not a port to be chosen
            for key in stream.resolved_endpoints(ep):
                handle = self.handles.pop(key, None)
                if handle is not None:
                    return handle
        raise ZMQError(c.ENOENT, f"no such endpoint: {address}")

    def shutdown(self, linger_ms: int) -> None:
        """Stop accepting and reconnecting, then close each connection after LINGER."""
        for handle in set(self.handles.values()):
            handle.close(drop_links=False, linger_ms=linger_ms)
        self.handles.clear()
        for link in list(self.links):
            link.finish(linger_ms)
        if self.zap is not None:
            self.zap.close()


def _transport(ep: Endpoint) -> Transport:
    transport = TRANSPORTS.get(ep.transport)
    if transport is None:
        raise ZMQError(c.EPROTONOSUPPORT, f"unsupported transport {ep.transport!r}")
    return transport


__all__ = ["TRANSPORTS", "EndpointHandle", "Endpoints", "InprocRegistry", "Monitor"]
