"""What a user holds of a message, as pyzmq shapes it: `Frame` (a received frame for
`copy=False` callers, or one to send with a draft socket's group or routing id), `as_frame`
(what a send accepts as a frame) and `MessageTracker` (`track=True`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import constants as c
from . import face_draft
from .errors import ZMQError

if TYPE_CHECKING:
    from .pipe import Pipe


class Frame:
    """A received frame, for `copy=False` callers (pyzmq's zmq.Frame). Draft sockets set its
    `group` (RADIO/DISH) or `routing_id` (SERVER/PEER), and read them from a Frame sent. A
    frame received over tcp or ipc answers its connection's metadata, as libzmq's
    `zmq_msg_gets`: `frame.get("Peer-Address")`, "Socket-Type", "Identity", "User-Id" (from
    ZAP) and whatever else the peer's READY or the ZAP reply's metadata named."""

    __slots__ = ("_group", "_source", "bytes", "more", "routing_id", "tracker")

    def __init__(
        self,
        data: Any = b"",
        track: bool = False,
        copy: bool | None = None,
        copy_threshold: int | None = None,
        *,
        more: bool = False,
        source: Pipe | None = None,
    ) -> None:
        # pyzmq's signature; the bytes are always copied here (`copy`, `copy_threshold`).
        # None is an empty frame, as in pyzmq.
        self.bytes = b"" if data is None else as_frame(data)
        self.more = more
        #: The pipe it came from, whose connection's metadata `get(name)` reads; None for a
        #: frame made here, or one whose origin the face did not keep.
        self._source = source
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

    def set(self, option: int, value: int) -> None:
        """pyzmq's Frame.set (zmq_msg_set): libzmq 4.3 has no settable property, so EINVAL."""
        raise ZMQError(c.EINVAL, f"a frame has no property {option!r} to set")

    def get(self, option: int | str) -> int | str:
        """pyzmq's Frame.get: MORE (whether more frames follow), SHARED (0: the engine copies
        every frame), SRCFD (the connection's descriptor), or a metadata property by name
        (EINVAL when the connection has none of that name; inproc connections have none, as
        in libzmq)."""
        if isinstance(option, str):
            return message_property(self._source, option)
        if option == c.MORE:
            return int(self.more)
        if option == c.SHARED:
            return 0
        if option == c.SRCFD:  # libzmq's deprecated "descriptor it was read from"
            fd = getattr(getattr(self._source, "link", None), "fd", 0)
            if fd > 0:
                return int(fd)
        raise ZMQError(c.EINVAL, f"a Frame answers MORE, SHARED, SRCFD and properties: {option!r}")

    def __getitem__(self, option: int | str) -> int | str:
        """`frame["User-Id"]` is `frame.get("User-Id")`, as in pyzmq."""
        return self.get(option)

    @property
    def buffer(self) -> memoryview:
        return memoryview(self.bytes)

    def __bytes__(self) -> bytes:
        return self.bytes

    def __buffer__(self, flags: int) -> memoryview:
        """The buffer protocol (PEP 688, Python 3.12 and later), as pyzmq's Frame has it:
        `memoryview(frame)` and `numpy.frombuffer(frame, ...)` read the bytes without a copy.
        Before 3.12 a class written in Python cannot offer it; `frame.buffer` does there.
        The view is read-only (pyzmq's is writable): the frame holds immutable bytes."""
        return memoryview(self.bytes)

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


def message_property(source: Pipe | None, name: str) -> str:
    """A received message's metadata property, by name (any case, as names travel in READY):
    Peer-Address is the address the connection's ZAP request named (tcp: the peer's IP; ipc:
    localhost:uid:gid:pid), the rest is what the handshake brought (the peer's properties, then
    the ZAP reply's User-Id and metadata)."""
    key = name.lower()
    if source is not None:
        if key == "peer-address" and source.peer_address:
            return source.peer_address
        properties = source.properties
        if properties is not None and key in properties:
            return properties[key].decode("utf-8", "replace")
    raise ZMQError(c.EINVAL, f"the message has no property {name!r}")


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
