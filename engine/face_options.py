"""Socket options, as pyzmq's Socket takes them: setsockopt/getsockopt, their string forms,
HWM, subscribe, and options as attributes (`sock.linger = 0`), where a typo is an error.

Mixed into SocketFace, so that both faces share them: the checks happen here, in the order
pyzmq's make them (the value's kind, then whether this socket type has the option), and the
values land in the socket core's Options.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import constants as c
from .errors import ZMQError
from .options import (
    SOCKET_HANDLED,
    check_socket_type,
    check_value_kind,
    get_option,
    is_bytes_option,
    option_name,
    set_option,
)
from .security.options import SECURITY_OPTIONS, get_security_option, set_security_option

if TYPE_CHECKING:
    from .sockets.base import SocketCore
    from .transport import Endpoints

_ATTRIBUTE_OPTIONS = {o.name.lower(): o.value for o in (*c.SocketOption, *c.EngineOption)}
_ATTRIBUTE_OPTIONS.update({"identity": c.ROUTING_ID, "hwm": c.HWM})
#: Options whose attribute form (`sock.subscribe = "x"`) also takes str.
_STR_ATTRIBUTES = {c.SUBSCRIBE, c.UNSUBSCRIBE}


def socket_option_named(name: str) -> int | None:
    """The socket option an attribute names (`linger`, `identity`), for a socket or for a
    context's defaults alike, so both faces take the same names; None when it names none."""
    return _ATTRIBUTE_OPTIONS.get(name.lower())


def declared_attribute(obj: object, name: str) -> bool:
    """An attribute the object has, or its class (or a subclass's body) declares: plain
    Python attributes on a socket or context; any other public name must be an option."""
    if name in vars(obj):
        return True
    return any(
        name in vars(cls) or name in vars(cls).get("__annotations__", {})
        for cls in type(obj).__mro__
    )


class SocketOptions:
    """The option half of SocketFace (engine.face), which declares the state used here."""

    __slots__ = ()  # the face declares its state
    _core: SocketCore
    _endpoints: Endpoints
    _recv_rest: list[bytes]

    _check_open: Callable[[], None]

    def setsockopt(self, option: int, optval: Any) -> None:
        self._check_open()
        check_value_kind(option, optval)
        core = self._core
        if option in (c.SUBSCRIBE, c.UNSUBSCRIBE):
            core.set_subscription(optval, option == c.SUBSCRIBE)
        elif option == c.HWM:
            set_option(core.options, c.SNDHWM, optval)
            set_option(core.options, c.RCVHWM, optval)
            core.apply_hwms()
        elif option in SOCKET_HANDLED:
            raise ZMQError(c.EINVAL, f"option {option_name(option).upper()} is read-only")
        elif option in SECURITY_OPTIONS:
            set_security_option(core.options, option, optval)
        else:
            check_socket_type(option, core.socket_type)
            set_option(core.options, option, optval)
            if option in (c.SNDHWM, c.RCVHWM):
                core.apply_hwms()
        core.refresh_direct()

    def fileno(self) -> int:
        """pyzmq's fileno(): the FD option, readable when the socket may have work."""
        return int(self.getsockopt(c.FD))

    def getsockopt(self, option: int) -> Any:
        self._check_open()
        core = self._core
        if option == c.TYPE:
            return int(core.socket_type)  # a number, as pyzmq's getsockopt; .type is the enum
        if option == c.RCVMORE:
            return int(bool(self._recv_rest))
        if option == c.LAST_ENDPOINT:
            return self._endpoints.last_endpoint.encode()
        if option == c.EVENTS:
            return self._events()
        if option == c.HWM:
            return core.options.sndhwm
        if option == c.FD:
            return self._fd()
        if option == c.THREAD_SAFE:
            return int(core.thread_safe)
        if option == c.TOPICS_COUNT:
            return core.topics_count()
        if option in SECURITY_OPTIONS:
            return get_security_option(core.options, option)
        return get_option(core.options, option)

    def set_hwm(self, value: int) -> None:
        """pyzmq's HWM setter: SNDHWM and RCVHWM together."""
        self.setsockopt(c.HWM, value)

    def get_hwm(self) -> int:
        """pyzmq's HWM getter (SNDHWM)."""
        return int(self.getsockopt(c.HWM))

    def setsockopt_string(self, option: int, optval: str, encoding: str = "utf-8") -> None:
        if not isinstance(optval, str):
            raise TypeError(f"setsockopt_string takes str, not {type(optval).__name__}")
        self.setsockopt(option, optval.encode(encoding))

    def getsockopt_string(self, option: int, encoding: str = "utf-8") -> str:
        value = self.getsockopt(option)
        if not isinstance(value, bytes):
            raise TypeError(f"option {option_name(option).upper()} is not a string option")
        return value.decode(encoding)

    set = setsockopt
    get = getsockopt
    set_string = setsockopt_string
    get_string = getsockopt_string
    setsockopt_unicode = setsockopt_string  # pyzmq's older names
    getsockopt_unicode = getsockopt_string

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

    def __dir__(self) -> list[str]:
        """The options read and set as attributes too (`sock.LINGER`), as pyzmq lists them."""
        return sorted({*super().__dir__(), *(name.upper() for name in _ATTRIBUTE_OPTIONS)})

    def __getattr__(self, name: str) -> Any:
        option = socket_option_named(name)
        if option is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")
        try:
            return self.getsockopt(option)
        except ZMQError as exc:
            if exc.errno in (c.EINVAL, c.EFAULT):
                # A write-only option (SUBSCRIBE), or one this type has not: as pyzmq, no such
                # attribute to read, so getattr(sock, name, default) and hasattr work, and
                # mock.Mock(spec=sock), which reads every name dir() lists.
                raise AttributeError(f"{name} cannot be read: {exc}") from None
            raise

    def __setattr__(self, name: str, value: Any) -> None:
        option = socket_option_named(name)
        if option is None or name.startswith("_"):
            if not name.startswith("_") and not declared_attribute(self, name):
                # As pyzmq: `sock.lingr = 0` is a typo to report, not an attribute to keep.
                raise AttributeError(f"{type(self).__name__} has no such option: {name.upper()}")
            object.__setattr__(self, name, value)
            return
        if isinstance(value, str) and (is_bytes_option(option) or option in _STR_ATTRIBUTES):
            value = value.encode()
        self.setsockopt(option, value)
