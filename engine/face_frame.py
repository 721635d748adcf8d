"""What a user holds of a message, as pyzmq shapes it: `Frame` (a received frame for
`copy=False` callers, or one to send with a draft socket's group or routing id), `as_frame`
(what a send accepts as a frame) and `MessageTracker` (`track=True`)."""

from __future__ import annotations

from typing import Any

from . import constants as c
from . import face_draft
from .errors import ZMQError


class Frame:
    """A received frame, for `copy=False` callers (pyzmq's zmq.Frame). Draft sockets set its
    `group` (RADIO/DISH) or `routing_id` (SERVER/PEER), and read them from a Frame sent."""

    __slots__ = ("_group", "bytes", "more", "routing_id", "tracker")

    def __init__(
        self,
        data: Any = b"",
        track: bool = False,
        copy: bool | None = None,
        copy_threshold: int | None = None,
        *,
        more: bool = False,
    ) -> None:
        # pyzmq's signature; the bytes are always copied here (`copy`, `copy_threshold`).
        self.bytes = as_frame(data)
        self.more = more
        self._group = b""
        self.routing_id = 0
        #: pyzmq's Frame(track=True).tracker: done at once, as the bytes were copied.
        self.tracker: MessageTracker | None = DONE_TRACKER if track else None

    @property
    def group(self) -> str:
        return face_draft.group_text(self._group)

    @group.setter
    def group(self, group: str | bytes) -> None:
        self._group = face_draft.group_bytes(group)

    def get(self, option: int) -> int:
        """pyzmq's Frame.get: MORE (whether more frames follow). Connection metadata is not
        kept on a received frame here."""
        if option == c.MORE:
            return int(self.more)
        raise ZMQError(c.EINVAL, f"a Frame answers MORE only, not {option!r}")

    @property
    def buffer(self) -> memoryview:
        return memoryview(self.bytes)

    def __bytes__(self) -> bytes:
        return self.bytes

    def __len__(self) -> int:
        return len(self.bytes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frame):
            return self.bytes == other.bytes
        return self.bytes == other

    def __hash__(self) -> int:
        return hash(self.bytes)

    def __repr__(self) -> str:
        return f"Frame({self.bytes!r})"


def as_frame(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        raise TypeError("str frames are not allowed: encode them, or use send_string")
    if isinstance(data, Frame):
        return data.bytes
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError(f"cannot send {type(data).__name__}: expected bytes") from None


class MessageTracker:
    """pyzmq's tracker for `track=True`; frames are always copied here, so it is done at once."""

    done = True

    def wait(self, timeout: float | None = None) -> None:
        return None


#: The one tracker every tracked send returns (it is always done).
DONE_TRACKER = MessageTracker()
