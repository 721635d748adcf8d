"""SocketFace: the pyzmq-shaped API shared by the sync and asyncio faces.

Everything here is non-blocking bookkeeping: multipart assembly for SNDMORE/RCVMORE, option
access, serialisation helpers and endpoint calls. A face supplies the waiting: `send`, `recv`,
`send_multipart`, `recv_multipart`, `_deserialize` and `_call_on_loop`. The helpers call those,
so `recv_json` returns a value on the sync face and an awaitable on the asyncio face, from one
implementation.
"""

from __future__ import annotations

import codecs
import json
import pickle
import random
from collections.abc import Callable, Sequence
from typing import Any

from . import constants as c
from . import transport
from .errors import ZMQBindError, ZMQError
from .options import SOCKET_HANDLED, get_option, is_bytes_option, option_name, set_option
from .sockets.base import SocketCore

_ATTRIBUTE_OPTIONS = {o.name.lower(): o.value for o in c.SocketOption}
_ATTRIBUTE_OPTIONS.update({"identity": c.ROUTING_ID, "hwm": c.HWM})


class Frame:
    """A received frame, for `copy=False` callers (pyzmq's zmq.Frame)."""

    __slots__ = ("bytes", "more")

    def __init__(self, data: bytes = b"", more: bool = False) -> None:
        self.bytes = bytes(data)
        self.more = more

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


class SocketFace:
    """Shared by engine.Socket (sync) and engine.asyncio.Socket."""

    _core: SocketCore

    def __init__(self, core: SocketCore) -> None:
        object.__setattr__(self, "_core", core)
        object.__setattr__(self, "_send_parts", [])
        object.__setattr__(self, "_recv_rest", [])

    # Supplied by each face.
    def _call_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def _deserialize(self, result: Any, load: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    # -- multipart bookkeeping --------------------------------------------------------------------

    def _gather(self, data: Any, flags: int) -> list[bytes] | None:
        """Collect SNDMORE parts; returns the whole message once the last part is given."""
        frame = as_frame(data)
        parts = self._send_parts
        if flags & c.SNDMORE:
            parts.append(frame)
            return None
        if parts:
            parts.append(frame)
            object.__setattr__(self, "_send_parts", [])
            return parts
        return [frame]

    def _first_frame(self, msg: list[bytes], copy: bool) -> bytes | Frame:
        """recv() hands out one frame at a time; the rest wait for the next calls."""
        if len(msg) > 1:
            object.__setattr__(self, "_recv_rest", msg[1:])
        return msg[0] if copy else Frame(msg[0], len(msg) > 1)

    def _next_rest_frame(self, copy: bool) -> bytes | Frame:
        rest = self._recv_rest
        frame = rest.pop(0)
        return frame if copy else Frame(frame, bool(rest))

    @staticmethod
    def _frames_out(msg: list[bytes], copy: bool) -> list[Any]:
        if copy:
            return msg
        last = len(msg) - 1
        return [Frame(f, i < last) for i, f in enumerate(msg)]

    # -- state --------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def socket_type(self) -> int:
        return self._core.socket_type

    type = socket_type

    @property
    def rcvmore(self) -> bool:
        return bool(self._recv_rest)

    def _check_open(self) -> None:
        if self._core.closed:
            raise ZMQError(c.ENOTSOCK, "socket is closed")

    # -- endpoints ----------------------------------------------------------------------------

    def bind(self, addr: str) -> str:
        self._check_open()
        endpoint = self._call_on_loop(transport.bind, self._core, addr)
        self._core.process_commands()  # inproc peers waiting for this name join now
        return endpoint

    def connect(self, addr: str) -> None:
        self._check_open()
        self._call_on_loop(transport.connect, self._core, addr)
        # Take the new pipe in now, so a SUB's subscriptions go out without waiting for
        # the next send or recv.
        self._core.process_commands()

    def unbind(self, addr: str) -> None:
        self._check_open()
        self._call_on_loop(transport.unbind, self._core, addr)

    def disconnect(self, addr: str) -> None:
        self._check_open()
        self._call_on_loop(transport.disconnect, self._core, addr)

    def bind_to_random_port(
        self, addr: str, min_port: int = 49152, max_port: int = 65536, max_tries: int = 100
    ) -> int:
        if min_port == 49152 and max_port == 65536:
            return int(self.bind(f"{addr}:0").rsplit(":", 1)[1])
        for _ in range(max_tries):
            port = random.randrange(min_port, max_port)
            try:
                self.bind(f"{addr}:{port}")
            except ZMQError as exc:
                if exc.errno != c.EADDRINUSE:
                    raise
                continue
            return port
        raise ZMQBindError("could not bind socket to a random port")

    # -- options ------------------------------------------------------------------------------

    def setsockopt(self, option: int, value: Any) -> None:
        self._check_open()
        core = self._core
        if option in (c.SUBSCRIBE, c.UNSUBSCRIBE):
            if isinstance(value, str):
                raise TypeError("SUBSCRIBE takes bytes (use setsockopt_string)")
            core.set_subscription(bytes(value), option == c.SUBSCRIBE)
        elif option == c.HWM:
            set_option(core.options, c.SNDHWM, value)
            set_option(core.options, c.RCVHWM, value)
        elif option in SOCKET_HANDLED:
            raise ZMQError(c.EINVAL, f"option {option_name(option).upper()} is read-only")
        else:
            set_option(core.options, option, value)

    def getsockopt(self, option: int) -> Any:
        self._check_open()
        core = self._core
        if option == c.TYPE:
            return core.socket_type
        if option == c.RCVMORE:
            return int(bool(self._recv_rest))
        if option == c.LAST_ENDPOINT:
            return core.last_endpoint.encode()
        if option == c.EVENTS:
            return self._events()
        if option == c.MECHANISM:
            return 0  # NULL
        if option == c.HWM:
            return core.options.sndhwm
        if option == c.FD:
            return self._fd()
        return get_option(core.options, option)

    def setsockopt_string(self, option: int, value: str, encoding: str = "utf-8") -> None:
        self.setsockopt(option, value.encode(encoding))

    def getsockopt_string(self, option: int, encoding: str = "utf-8") -> str:
        value = self.getsockopt(option)
        if not isinstance(value, bytes):
            raise TypeError(f"option {option_name(option).upper()} is not a string option")
        return value.decode(encoding)

    set = setsockopt
    get = getsockopt
    set_string = setsockopt_string
    get_string = getsockopt_string

    def subscribe(self, topic: bytes | str) -> None:
        self.setsockopt(c.SUBSCRIBE, topic.encode() if isinstance(topic, str) else topic)

    def unsubscribe(self, topic: bytes | str) -> None:
        self.setsockopt(c.UNSUBSCRIBE, topic.encode() if isinstance(topic, str) else topic)

    def _events(self) -> int:
        mask = self._core.events()
        if self._recv_rest:
            mask |= c.POLLIN
        return mask

    def _fd(self) -> int:
        raise ZMQError(c.EINVAL, "FD is not available on this face")

    def __getattr__(self, name: str) -> Any:
        option = _ATTRIBUTE_OPTIONS.get(name.lower())
        if option is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")
        value = self.getsockopt(option)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        option = _ATTRIBUTE_OPTIONS.get(name.lower())
        if option is None or name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if isinstance(value, str) and (is_bytes_option(option) or option in (6, 7)):
            value = value.encode()
        self.setsockopt(option, value)

    # -- lifetime -----------------------------------------------------------------------------

    _face_name = "engine socket"

    def close(self, linger: int | None = None) -> None:
        raise NotImplementedError

    def __enter__(self) -> SocketFace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = c.SocketType(self._core.socket_type).name
        return f"<{self._face_name} {name} {'closed' if self.closed else 'open'}>"

    # -- serialisation helpers (shared by both faces) ---------------------------------------------

    def send_string(
        self, u: str, flags: int = 0, copy: bool = True, encoding: str = "utf-8", **kw: Any
    ) -> Any:
        if not isinstance(u, str):
            raise TypeError("send_string takes str")
        return self.send(u.encode(encoding), flags=flags, copy=copy, **kw)

    def recv_string(self, flags: int = 0, encoding: str = "utf-8") -> Any:
        decoder = codecs.getdecoder(encoding)
        return self._deserialize(self.recv(flags), lambda b: decoder(b)[0])

    send_unicode = send_string
    recv_unicode = recv_string

    def send_json(self, obj: Any, flags: int = 0, **kw: Any) -> Any:
        data = json.dumps(obj, **kw).encode("utf-8")
        return self.send(data, flags=flags)

    def recv_json(self, flags: int = 0, **kw: Any) -> Any:
        return self._deserialize(self.recv(flags), lambda b: json.loads(b, **kw))

    def send_pyobj(self, obj: Any, flags: int = 0, protocol: int = pickle.DEFAULT_PROTOCOL) -> Any:
        """Pickle and send. Only ever use with peers you trust."""
        return self.send(pickle.dumps(obj, protocol), flags=flags)

    def recv_pyobj(self, flags: int = 0) -> Any:
        """Receive and unpickle. UNSAFE with untrusted peers: unpickling runs arbitrary code."""
        return self._deserialize(self.recv(flags), pickle.loads)

    def send_serialized(self, msg: Any, serialize: Callable[[Any], Sequence[bytes]], **kw) -> Any:
        return self.send_multipart(serialize(msg), **kw)

    def recv_serialized(self, deserialize: Callable[[list[bytes]], Any], flags: int = 0) -> Any:
        return self._deserialize(self.recv_multipart(flags), deserialize)

    # Supplied by each face (declared for type checkers and readers).
    def send(self, data: Any, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        raise NotImplementedError

    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        raise NotImplementedError

    def send_multipart(self, msg_parts: Sequence[Any], flags: int = 0, **kw: Any) -> Any:
        raise NotImplementedError

    def recv_multipart(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any:
        raise NotImplementedError
