"""ContextFace: pyzmq's Context, written once for the sync and the asyncio faces.

The shared part is bookkeeping: the process-wide instance, the sockets a context made, context
options and the defaults they give new sockets, and term/destroy closing whatever is still open.
A face adds where its sockets' loops live (`_new_socket`) and what terminating means beyond
closing them (`_after_close`: the sync face waits for lingering messages, then stops its I/O
threads).
"""

from __future__ import annotations

import os
from collections.abc import MutableSet
from typing import Any

from . import constants as c
from .context import IOContext
from .errors import ContextTerminated, ZMQError
from .face import declared_attribute

#: The least each context option takes, as libzmq 4.3 (EINVAL below it).
_CONTEXT_MINIMUM = {c.IO_THREADS: 0, c.MAX_SOCKETS: 1, c.BLOCKY: 0}


class ContextFace:
    """Shared by engine.Context and engine.asyncio.Context."""

    _instance: ContextFace | None = None
    _instance_pid = -1
    _socket_class: type = object

    def __init__(self, io_threads: int = 1, **kwargs: Any) -> None:
        object.__setattr__(self, "_io", IOContext())
        object.__setattr__(self, "_sockets", self._socket_set())
        object.__setattr__(self, "_defaults", {})
        object.__setattr__(self, "_io_threads", max(1, int(io_threads)))
        object.__setattr__(self, "_pid", os.getpid())

    @staticmethod
    def _socket_set() -> MutableSet[Any]:
        """Where the context keeps its sockets (the sync face lets unused ones be collected)."""
        return set()

    @classmethod
    def instance(cls, io_threads: int = 1) -> Any:
        """The process-wide context; a forked child gets a fresh one."""
        inst = cls._instance
        if inst is None or inst.closed or cls._instance_pid != os.getpid():
            inst = cls(io_threads)
            cls._instance = inst
            cls._instance_pid = os.getpid()
        return inst

    @property
    def closed(self) -> bool:
        return self._io.terminated

    def socket(self, socket_type: int, socket_class: type | None = None, **options: Any) -> Any:
        if self._io.terminated:
            raise ContextTerminated()
        sock = (socket_class or self._socket_class)(self, socket_type)
        for name, value in options.items():
            setattr(sock, name, value)
        self._sockets.add(sock)
        return sock

    def _forget(self, sock: Any) -> None:
        """A socket closed: it no longer counts towards MAX_SOCKETS."""
        self._sockets.discard(sock)
        self._io.forget(sock._core)

    # -- options --------------------------------------------------------------------------------

    def set(self, option: int, value: Any) -> None:
        if option in _CONTEXT_MINIMUM and int(value) < _CONTEXT_MINIMUM[option]:
            raise ZMQError(
                c.EINVAL,
                f"{c.ContextOption(option).name} takes "
                f"{_CONTEXT_MINIMUM[option]} or more, not {value}",
            )
        if option == c.IO_THREADS:
            self._set_io_threads(max(1, int(value)))
        elif option in (c.MAX_SOCKETS, c.SOCKET_LIMIT):
            self._io.max_sockets = int(value)
        elif option == c.BLOCKY:
            pass  # term() always waits for LINGER, as BLOCKY (the default) asks
        else:
            self._defaults[option] = value  # a default for sockets created from now on

    def get(self, option: int) -> Any:
        if option == c.IO_THREADS:
            return self._io_threads
        if option in (c.MAX_SOCKETS, c.SOCKET_LIMIT):
            return self._io.max_sockets
        return self._defaults.get(option, 0)

    setsockopt = set
    getsockopt = get

    def _set_io_threads(self, count: int) -> None:
        object.__setattr__(self, "_io_threads", count)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name.upper() in c.SocketOption.__members__:
            self._defaults[c.SocketOption[name.upper()].value] = value
        elif name.startswith("_") or declared_attribute(self, name):
            object.__setattr__(self, name, value)
        else:  # as pyzmq: a typo (`ctx.lingr = 0`) is reported, not kept
            raise AttributeError(f"{type(self).__name__} has no such option: {name.upper()}")

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") and name.upper() in c.SocketOption.__members__:
            defaults = self.__dict__.get("_defaults", {})
            option = c.SocketOption[name.upper()].value
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

    def _shutdown(self, linger: int | None, max_linger_ms: int | None = None) -> None:
        if self._io.terminated:
            return
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
