"""How a socket face hands out what it received: a whole message, or one frame at a time
(recv() keeps the rest of a multipart message for the next calls), as bytes or as `Frame`s.

A `Frame` (copy=False) knows the pipe its message came from, so that it answers its
connection's metadata (`frame.get("Peer-Address")`, "User-Id"...). The pipe is the fair-queue's
`pipe` right after the take: a copy=False receive takes the message and its pipe together, so
that on the asyncio face, where the caller's future settles later, another receive in between
cannot change it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .face_frame import Frame

if TYPE_CHECKING:
    from .pipe import Pipe
    from .sockets.base import SocketCore

#: A message taken together with the pipe it came from (None: not known).
Sourced = tuple[list[bytes], "Pipe | None"]


class ReceivedFrames:
    """The receive-side bookkeeping of a socket face (engine.face.SocketFace)."""

    __slots__ = ()  # the face declares its state
    _core: SocketCore
    #: The frames of the current message that recv() has still to hand out.
    _recv_rest: list[bytes]
    #: The pipe those frames came from.
    _rest_source: Pipe | None

    def _source(self) -> Pipe | None:
        """The pipe of the message taken last (sound right after the take, on the taking
        thread)."""
        return getattr(getattr(self._core, "inbox", None), "pipe", None)

    def _take_sourced(self) -> Sourced | None:
        """A message taken now, with its pipe; None when none is waiting."""
        core = self._core
        if core.thread_safe:  # (other threads take from it too: both under its lock)
            return core.recv_sourced()  # type: ignore[attr-defined, no-any-return]
        msg = core.recv()
        return None if msg is None else (msg, self._source())

    def _first_frame(self, msg: list[bytes], copy: bool, source: Pipe | None) -> bytes | Frame:
        """recv() hands out one frame at a time; the rest wait for the next calls."""
        if len(msg) > 1:
            self._keep_rest(msg[1:], source)
        return msg[0] if copy else Frame(msg[0], more=len(msg) > 1, source=source)

    def _keep_rest(self, rest: list[bytes], source: Pipe | None = None) -> None:
        """The frames of the current message that recv() has still to hand out. While there
        are any, the sync face may not take whole messages from the fair-queue itself."""
        object.__setattr__(self, "_recv_rest", rest)
        object.__setattr__(self, "_rest_source", source)
        core = self._core
        core.face_holds_rest = bool(rest)
        if rest:
            core.direct = None
        else:
            core.refresh_direct()

    def _next_rest_frame(self, copy: bool) -> bytes | Frame:
        rest = self._recv_rest
        frame = rest.pop(0)
        if not rest:
            self._core.face_holds_rest = False
            self._core.refresh_direct()
        return frame if copy else Frame(frame, more=bool(rest), source=self._rest_source)

    @staticmethod
    def _frames_out(msg: list[bytes], copy: bool, source: Pipe | None = None) -> list[Any]:
        if copy:
            return msg
        last = len(msg) - 1
        return [Frame(f, more=i < last, source=source) for i, f in enumerate(msg)]
