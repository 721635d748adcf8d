"""Routing over raw connections: STREAM's, and a ROUTER's with ROUTER_RAW (libzmq's older way
to the same thing, kept by libzmq 4.3 and so here).

No ZMTP travels on such a connection: what its peer writes arrives as [routing id, the bytes of
one read], and [routing id, bytes] writes them to it. An empty message both ways means the
connection itself: received, a peer connected or went; sent, close it once what was queued
before is written. These functions only route, for the socket that owns the routes
(reqrep.RouterSocket or raw_stream.StreamSocket); the transport side is transport/raw_link.py.
"""

from __future__ import annotations

from typing import Any, Protocol

from .. import constants as c
from ..errors import ZMQError
from ..options import Options
from ..pipe import Message, Pipe


class RawRouter(Protocol):
    """What these functions need of the socket that routes (a ROUTER or a STREAM)."""

    routes: dict[bytes, Pipe]
    options: Options
    _commands: Any  # commands from the loop not yet processed (a new connection among them)

    def _generated_id(self) -> bytes: ...

    def process_commands(self) -> None: ...


def accepts_raw_peer(router: RawRouter, pipe: Pipe) -> bool:
    """A new connection takes its CONNECT_ROUTING_ID (connect side) or a generated id; an id
    already held refuses it, as a ROUTER refuses a taken one."""
    rid = pipe.routing_id
    if not rid:
        rid = router._generated_id()
        # As libzmq: ROUTING_ID then reads the id given last, which is how its manual has a
        # program learn the id of the connection its connect() made.
        router.options.routing_id = rid
    old = router.routes.get(rid)
    if old is not None and not old.closed:
        return False
    pipe.routing_id = rid
    router.routes[rid] = pipe
    return True


def send_raw(router: RawRouter, msg: Message) -> bool:
    """Frames alternate routing id and data, as libzmq reads them (it ignores a data frame's
    MORE flag, so a third frame names the next connection); a last routing id with no data
    after it is dropped. All or nothing: each target is found, and has room, before any is
    written to. False: a target is at SNDHWM (would block)."""
    writes = [(raw_route(router, msg[at]), msg[at + 1]) for at in range(0, len(msg) - 1, 2)]
    if any(data and not pipe.has_room() for pipe, data in writes):
        return False
    for pipe, data in writes:
        # An empty message goes whatever the high-water mark: the link closes the connection
        # when it reaches it.
        pipe.push([data])
    return True


def raw_route(router: RawRouter, rid: bytes) -> Pipe:
    """The connection routed by `rid`; EHOSTUNREACH when there is none, as in libzmq."""
    pipe = router.routes.get(rid)
    if pipe is None or pipe.closed:
        if router._commands:  # the connection may have been made a moment ago
            router.process_commands()
            pipe = router.routes.get(rid)
        if pipe is None or pipe.closed:
            raise ZMQError(c.EHOSTUNREACH, "no connection with that routing id")
    return pipe
