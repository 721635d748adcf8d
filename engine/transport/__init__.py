"""Endpoint management for a socket: bind, connect, unbind, disconnect and close.

These run on the socket's I/O loop; the faces call them there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import constants as c
from ..endpoint import parse
from ..errors import ZMQError
from . import inproc
from .stream import Connecter, Listener

if TYPE_CHECKING:
    from ..sockets.base import SocketCore


def bind(socket: SocketCore, address: str) -> str:
    ep = parse(address, binding=True)
    if ep.transport == "inproc":
        endpoint = inproc.bind(socket, ep)
        resolved = str(ep)
    else:
        endpoint = Listener(socket, ep)
        resolved = endpoint.open()
    socket.endpoints[resolved] = endpoint
    if resolved != address:
        socket.endpoints.setdefault(address, endpoint)
    socket.last_endpoint = resolved
    return resolved


def connect(socket: SocketCore, address: str) -> None:
    ep = parse(address, binding=False)
    if ep.transport == "inproc":
        endpoint = inproc.connect(socket, ep)
    else:
        pipe = None
        if socket.queues_before_connect and not socket.options.immediate:
            # Messages sent before the peer is reachable wait in this pipe (no IMMEDIATE).
            pipe = socket.new_pipe(persistent=True)
            socket.attach(pipe)
        endpoint = Connecter(socket, ep, pipe)
        endpoint.open()
    socket.endpoints[str(ep)] = endpoint
    socket.last_endpoint = str(ep)


def _remove(socket: SocketCore, address: str) -> None:
    endpoint = socket.endpoints.pop(address, None)
    if endpoint is None:
        raise ZMQError(c.ENOENT, f"no such endpoint: {address}")
    for key in [k for k, v in socket.endpoints.items() if v is endpoint]:
        del socket.endpoints[key]
    endpoint.close()
    pipe = getattr(endpoint, "pipe", None)
    if pipe is not None and pipe.persistent:
        socket.detach(pipe)


unbind = _remove
disconnect = _remove


def shutdown(socket: SocketCore, linger_ms: int) -> None:
    """Stop accepting and reconnecting, then close each connection after LINGER."""
    for endpoint in set(socket.endpoints.values()):
        endpoint.close(drop_links=False, linger_ms=linger_ms)
    socket.endpoints.clear()
    for link in list(socket.links):
        link.finish(linger_ms)
