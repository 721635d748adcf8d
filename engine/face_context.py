"""ContextFace: pyzmq's Context, written once for the sync and the asyncio faces.

The shared part is bookkeeping: the process-wide instance, the sockets a context made, context
options and the defaults they give new sockets, and term/destroy closing whatever is still open.
A face adds where its sockets' loops live (`_new_socket`) and what terminating means beyond
closing them (`_after_close`: the sync face waits for lingering messages, then stops its I/O
threads).
"""

from __future__ import annotations

import os
import threading
from collections.abc import MutableSet
from typing import Any

from . import constants as c
from .context import IOContext
from .errors import ZMQError
from .face_options import declared_attribute, socket_option_named
from .options import check_c_int

#: Makes Context.instance() one context for every thread; held only while a context is made
#: (which waits on nothing).
_INSTANCE_LOCK = threading.Lock()

#: The least each settable context option takes, as libzmq 4.3 (EINVAL below it).
_CONTEXT_MINIMUM = {
    c.IO_THREADS: 0,
    c.MAX_SOCKETS: 1,
    c.SOCKET_LIMIT: 0,
    c.MAX_MSGSZ: 0,
    c.BLOCKY: 0,
    c.IPV6: 0,
}
#: libzmq's answer for SOCKET_LIMIT (the most MAX_SOCKETS may be) and MSG_T_SIZE (the size of
#: its zmq_msg_t, which a C caller allocates; the engine has none, but says what libzmq says).
_SOCKET_LIMIT = 65535
_MSG_T_SIZE = 64
_INT_MAX = 2**31 - 1


class ContextFace:
    """Shared by engine.Context and engine.asyncio.Context."""

    _instance: ContextFace | None = None
    _instance_pid = -1
    _socket_class: type = object

    def __init__(self, io_threads: int = 1, **kwargs: Any) -> None:
        object.__setattr__(self, "_io", IOContext())
        object.__setattr__(self, "_sockets", self._socket_set())
        object.__setattr__(self, "_defaults", {})
        #: Context options as set (libzmq's defaults). IO_THREADS and MAX_SOCKETS size the
        #: context when its first socket starts it, as in libzmq: set later, they are reported
        #: and change nothing. BLOCKY and IPV6 give new sockets their LINGER and IPV6.
        #: MAX_MSGSZ is kept and applied to nothing, as in libzmq 4.3 (MAXMSGSIZE is per socket).
        if isinstance(io_threads, str | bytes) or io_threads is None:
            raise TypeError(f"io_threads takes an int, not {type(io_threads).__name__}")
        io_threads = int(io_threads)  # (pyzmq takes 2.0 as 2)
        check_c_int("io_threads", io_threads)
        if io_threads < 0:  # libzmq's zmq_ctx_set refuses it, so pyzmq's Context(-1) fails
            raise ZMQError(c.EINVAL, f"io_threads takes 0 or more, not {io_threads}")
        kept = {c.IO_THREADS: io_threads, c.MAX_SOCKETS: self._io.max_sockets}
        kept |= {c.BLOCKY: 1, c.IPV6: 0, c.MAX_MSGSZ: _INT_MAX}
        object.__setattr__(self, "_kept", kept)
        object.__setattr__(self, "_started", False)
        object.__setattr__(self, "_pid", os.getpid())

    @staticmethod
    def _socket_set() -> MutableSet[Any]:
        """Where the context keeps its sockets (the sync face lets unused ones be collected)."""
        return set()

    @classmethod
    def instance(cls, io_threads: int = 1) -> Any:
        """The process-wide context; a forked child gets a fresh one. Threads asking at once
        all get the one made first (each made its own before)."""
        inst = cls._instance
        if inst is None or inst.closed or cls._instance_pid != os.getpid():
            with _INSTANCE_LOCK:
                inst = cls._instance
                if inst is None or inst.closed or cls._instance_pid != os.getpid():
                    inst = cls(io_threads)
                    cls._instance = inst
                    cls._instance_pid = os.getpid()
        return inst

    @property
    def closed(self) -> bool:
        return self._io.terminated

    def socket(self, socket_type: int, socket_class: type | None = None, **kwargs: Any) -> Any:
        """A new socket of `socket_class` (the context's own by default); `kwargs` go to its
        constructor, as pyzmq passes them, where the engine's take them as options."""
        if self._io.terminated:  # pyzmq's answer (ETERM is for calls a term() interrupts)
            raise ZMQError(c.ENOTSUP, "the context is terminated: it makes no more sockets")
        if not self._started:
            self._start_context()
        sock = (socket_class or self._socket_class)(self, socket_type, **kwargs)
        self._sockets.add(sock)
        return sock

    def _start_context(self) -> None:
        """The first socket starts the context, which takes its size then, as libzmq's: what
        IO_THREADS and MAX_SOCKETS say now holds until the context ends."""
        object.__setattr__(self, "_started", True)
        self._io.max_sockets = self._kept[c.MAX_SOCKETS]

    def _forget(self, sock: Any) -> None:
        """A socket closed: it no longer counts towards MAX_SOCKETS."""
        self._sockets.discard(sock)
        self._io.forget(sock._core)

    # -- options --------------------------------------------------------------------------------

    def set(self, option: int, optval: Any) -> None:
        """A context option (libzmq's zmq_ctx_set); socket defaults go through setsockopt."""
        if not isinstance(optval, int):  # as pyzmq (True and False are ints)
            raise TypeError(f"context option {option} takes an int, not {type(optval).__name__}")
        optval = int(optval)
        check_c_int(f"context option {option}", optval)  # pyzmq passes a C int
        if option not in _CONTEXT_MINIMUM:
            raise ZMQError(c.EINVAL, f"not a context option that can be set: {option}")
        if optval < _CONTEXT_MINIMUM[option]:
            name = c.ContextOption(option).name if option != c.IPV6 else "IPV6"
            raise ZMQError(
                c.EINVAL, f"{name} takes {_CONTEXT_MINIMUM[option]} or more, not {optval}"
            )
        if option == c.SOCKET_LIMIT:
            return  # as libzmq: taken, and the limit stays what the platform allows
        if option in (c.BLOCKY, c.IPV6):
            optval = int(optval != 0)
        self._kept[option] = min(optval, _INT_MAX)

    def get(self, option: int) -> Any:
        """A context option (libzmq's zmq_ctx_get); socket defaults through getsockopt."""
        if option == c.SOCKET_LIMIT:
            return _SOCKET_LIMIT
        if option == c.MSG_T_SIZE:
            return _MSG_T_SIZE
        if option in self._kept:
            return self._kept[option]
        raise ZMQError(c.EINVAL, f"not a context option: {option}")

    def setsockopt(self, opt: int, value: Any) -> None:
        """A default for the sockets this context makes from now on (pyzmq's, and its
        parameters' names)."""
        self._defaults[opt] = value

    def getsockopt(self, opt: int) -> Any:
        """The default set for `opt` (KeyError when none is, as pyzmq)."""
        return self._defaults[opt]

    @property
    def sockopts(self) -> dict[int, Any]:
        """The defaults setsockopt gave, by option number (pyzmq's)."""
        return self._defaults

    def _socket_defaults(self) -> dict[int, Any]:
        """What a new socket takes: BLOCKY 0 makes its LINGER 0 and IPV6 1 its IPV6 (libzmq),
        unless a default says otherwise."""
        kept = self._kept
        implied = {}
        if not kept[c.BLOCKY]:
            implied[c.LINGER] = 0
        if kept[c.IPV6]:
            implied[c.IPV6] = 1
        return implied | self._defaults if implied else self._defaults

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name.upper() in c.ContextOption.__members__:
            self.set(c.ContextOption[name.upper()].value, value)
        elif not name.startswith("_") and socket_option_named(name) is not None:
            self._defaults[socket_option_named(name)] = value
        elif name.startswith("_") or declared_attribute(self, name):
            object.__setattr__(self, name, value)
        else:  # as pyzmq: a typo (`ctx.lingr = 0`) is reported, not kept
            raise AttributeError(f"{type(self).__name__} has no such option: {name.upper()}")

    def __dir__(self) -> list[str]:
        """The context options read and set as attributes too (`ctx.IO_THREADS`), as pyzmq
        lists them."""
        return sorted({*super().__dir__(), *c.ContextOption.__members__})

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") and name.upper() in c.ContextOption.__members__:
            return self.get(c.ContextOption[name.upper()].value)
        option = None if name.startswith("_") else socket_option_named(name)
        if option is not None:
            defaults = self.__dict__.get("_defaults", {})
            if option in defaults:
                return defaults[option]
        raise AttributeError(name)

    # -- lifetime -------------------------------------------------------------------------------

    def term(self) -> None:
        """Close what is left open (blocked calls raise ETERM), let lingering messages go."""
        self._shutdown(None)

    def destroy(self, linger: int | None = None) -> None:
        """term(), closing every socket with `linger` (None: each socket's own LINGER)."""
        self._shutdown(linger)
        self._io.destroyed = True

    def _shutdown(self, linger: int | None, max_linger_ms: int | None = None) -> None:
        if self._io.terminated or self._pid != os.getpid():
            return  # done, or inherited across fork(): the parent's to end (see SocketFace.close)
        self._io.terminated = True  # first, so that calls woken by the closes see ETERM
        for sock in list(self._sockets):
            if sock.closed:
                continue
            ms = sock._core.options.linger if linger is None else linger
            if max_linger_ms is not None and (ms < 0 or ms > max_linger_ms):
                ms = max_linger_ms
            sock.close(ms)
        self._after_close()

    def _after_close(self) -> None:
        """Every socket is closed; what else terminating this context takes."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.term()

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.Context {'terminated' if self.closed else 'open'}>"


__all__ = ["ContextFace"]
