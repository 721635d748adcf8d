"""pyzmq's draft API on top of the socket cores: groups, routing ids, single frames, join/leave.

The thread-safe socket types take one frame per message (SNDMORE and multipart sends are
EINVAL, as in libzmq). What else a message carries travels to and from the core as a first
frame (engine.sockets.threadsafe): a RADIO/DISH group, or a SERVER/PEER routing id. pyzmq shows
them as ``Frame.group`` (str) and ``Frame.routing_id`` (int), and takes them as
``send(data, group=...)`` / ``send(data, routing_id=...)`` or on a Frame given to send.
"""

from __future__ import annotations

from typing import Any

from . import constants as c
from .errors import ZMQError
from .sockets.threadsafe import GROUP, ROUTING_ID
from .udp_datagram import GROUP_MAX

#: Groups are bytes on the wire; pyzmq shows them as str. surrogateescape keeps any bytes.
GROUP_ENCODING = ("utf-8", "surrogateescape")


def group_bytes(group: str | bytes) -> bytes:
    """A group as given by the user (str or bytes), as the wire carries it; EINVAL if too long."""
    raw = group.encode(*GROUP_ENCODING) if isinstance(group, str) else bytes(group)
    if len(raw) > GROUP_MAX:
        raise ZMQError(c.EINVAL, f"a group is at most {GROUP_MAX} bytes, not {len(raw)}")
    return raw


def group_text(group: bytes) -> str:
    return group.decode(*GROUP_ENCODING)


def single_frame(flags: int, parts: int) -> None:
    """Thread-safe sockets take one frame per message."""
    if flags & c.SNDMORE or parts != 1:
        raise ZMQError(c.EINVAL, "this socket type takes single-frame messages (no SNDMORE)")


def outgoing(
    metadata: str | None, data: Any, body: bytes, group: Any, routing_id: Any
) -> list[bytes]:
    """The core's message for `body`, with the group or routing id from the arguments or from
    a Frame given as `data`."""
    if metadata == GROUP:
        if group is None:
            group = getattr(data, "group", None) or b""
        return [group_bytes(group), body]
    if metadata == ROUTING_ID:
        if routing_id is None:
            routing_id = getattr(data, "routing_id", 0)
        if not isinstance(routing_id, int) or not 0 < routing_id < 1 << 32:
            raise ZMQError(c.EHOSTUNREACH, f"no peer with routing id {routing_id!r}")
        return [routing_id.to_bytes(4, "big"), body]
    return [body]


def incoming(
    metadata: str | None, msg: list[bytes], frame_class: type, copy: bool, source: Any = None
) -> Any:
    """What recv() hands out for the core's message: the body, or a Frame carrying the rest
    (and the pipe it came from, `source`, for its connection's metadata)."""
    if metadata is None:
        body = msg[0]
        return body if copy else frame_class(body, source=source)
    meta, body = msg
    if copy:
        return body
    frame = frame_class(body, source=source)
    if metadata == GROUP:
        frame.group = group_text(meta)
    else:
        frame.routing_id = int.from_bytes(meta, "big")
    return frame
