"""send_string/recv_string, JSON, pickle and custom serialisation, as pyzmq's Socket has them:
each is one send or recv of the face it is mixed into, so both faces share them."""

from __future__ import annotations

import codecs
import json
import pickle
from collections.abc import Callable, Sequence
from typing import Any


class SerialisingFace:
    """Mixed into SocketFace, whose `send`, `recv`, their multipart forms and `_then` (a
    value now, or a Future's result transformed) these call."""

    send: Callable[..., Any]
    recv: Callable[..., Any]
    send_multipart: Callable[..., Any]
    recv_multipart: Callable[..., Any]
    _then: Callable[[Any, Callable[[Any], Any]], Any]

    __slots__ = ()

    def send_string(
        self, u: str, flags: int = 0, copy: bool = True, encoding: str = "utf-8", **kw: Any
    ) -> Any:
        if not isinstance(u, str):
            raise TypeError("send_string takes str")
        return self.send(u.encode(encoding), flags=flags, copy=copy, **kw)

    def recv_string(self, flags: int = 0, encoding: str = "utf-8") -> Any:
        decoder = codecs.getdecoder(encoding)
        return self._then(self.recv(flags), lambda b: decoder(b)[0])

    send_unicode = send_string
    recv_unicode = recv_string

    def recv_into(self, buffer: Any, /, *, nbytes: int = 0, flags: int = 0) -> Any:
        """pyzmq 26.4's: the next frame stored into `buffer` (at most `nbytes` of it, or all
        of it by default); returns the frame's size, more than was stored when the frame was
        longer (the rest is dropped, as libzmq's zmq_recv does)."""
        view = memoryview(buffer)
        if view.readonly:
            raise BufferError("recv_into needs a writable buffer")
        if not view.c_contiguous:
            raise BufferError("recv_into needs a contiguous buffer")
        view = view.cast("B")
        if not 0 <= nbytes <= len(view):
            raise ValueError(f"nbytes={nbytes} does not fit a buffer of {len(view)} bytes")
        room = nbytes or len(view)

        def store(frame: bytes) -> int:
            kept = min(len(frame), room)
            view[:kept] = frame[:kept]
            return len(frame)

        return self._then(self.recv(flags), store)

    def send_json(self, obj: Any, flags: int = 0, **kw: Any) -> Any:
        """json.dumps(obj, **kw), sent; a draft socket's `routing_id` or `group` goes to send()
        rather than to json.dumps, as in pyzmq."""
        send_kw = {key: kw.pop(key) for key in ("routing_id", "group") if key in kw}
        data = json.dumps(obj, **kw).encode("utf-8")
        return self.send(data, flags=flags, **send_kw)

    def recv_json(self, flags: int = 0, **kw: Any) -> Any:
        return self._then(self.recv(flags), lambda b: json.loads(b, **kw))

    def send_pyobj(
        self, obj: Any, flags: int = 0, protocol: int = pickle.DEFAULT_PROTOCOL, **kw: Any
    ) -> Any:
        """Pickle and send (`kw` to send(): copy, track...). Only ever use with peers you
        trust."""
        return self.send(pickle.dumps(obj, protocol), flags=flags, **kw)

    def recv_pyobj(self, flags: int = 0) -> Any:
        """Receive and unpickle. UNSAFE with untrusted peers: unpickling runs arbitrary code."""
        return self._then(self.recv(flags), pickle.loads)

    def send_serialized(
        self,
        msg: Any,
        serialize: Callable[[Any], Sequence[bytes]],
        flags: int = 0,
        copy: bool = True,
        **kw: Any,
    ) -> Any:
        return self.send_multipart(serialize(msg), flags=flags, copy=copy, **kw)

    def recv_serialized(
        self, deserialize: Callable[[list[Any]], Any], flags: int = 0, copy: bool = True
    ) -> Any:
        """The next message's frames (bytes, or Frames with copy=False), deserialized."""
        return self._then(self.recv_multipart(flags, copy=copy), deserialize)
