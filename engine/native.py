"""Native threading primitives that stay native under gevent's monkey-patching.

Locust runs the sync face under `gevent.monkey.patch_all()`. Whatever the engine's I/O threads
share with the user's threads must then still be a real OS lock, and the I/O thread itself a real
OS thread polling with the real epoll: a greenlet would block the gevent hub. These helpers look
up the unpatched originals when gevent has patched a module, and the module as it is otherwise.
"""

from __future__ import annotations

import select
import selectors
import socket
import sys
from collections.abc import Callable
from typing import Any


def _original(module: str, name: str) -> Any:
    """The attribute before gevent patched it (or as it is, without gevent)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched(module):
        return monkey.get_original(module, name)
    return getattr(__import__(module), name)


def native_lock() -> Any:
    """A real OS lock, even under gevent (it may be taken by an I/O thread)."""
    return _original("_thread", "allocate_lock")()


def native_rlock() -> Any:
    """A real OS re-entrant lock (a thread-safe socket's, taken again inside its own calls)."""
    return _original("_thread", "RLock")()


def native_thread_local() -> Any:
    """A real OS thread's local storage: gevent's patched one is per greenlet instead."""
    return _original("_thread", "_local")()


def start_native_thread(fn: Callable[[], None]) -> None:
    _original("_thread", "start_new_thread")(fn, ())


def native_selector() -> selectors.BaseSelector:
    # gevent removes EpollSelector (and select.epoll) from the patched modules; the loop of a
    # real thread needs the real ones, which blocks that thread and not the gevent hub.
    try:
        return _original("selectors", "EpollSelector")()
    except AttributeError:
        return selectors.DefaultSelector()


def native_epoll() -> select.epoll:
    """A real epoll (gevent's patched select module has none)."""
    return _original("select", "epoll")()


def native_socket(family: int, kind: int = socket.SOCK_STREAM, proto: int = 0) -> socket.socket:
    """A real OS socket object: the I/O thread reads and writes it without gevent's waits."""
    return _original("socket", "socket")(family, kind, proto)


def native_getaddrinfo(
    host: str, port: int, family: int = 0, kind: int = 0, flags: int = 0
) -> list[Any]:
    """The C library's resolver, called on this very thread.

    Under gevent, socket.getaddrinfo goes through the hub of the calling thread, and asyncio's
    own resolver through a thread pool whose threads gevent turned into greenlets: neither
    runs on an engine I/O thread. libzmq resolves on its I/O thread too.
    """
    return _original("socket", "getaddrinfo")(host, port, family, kind, 0, flags)


def native_thread_id() -> int:
    return _original("_thread", "get_ident")()


class NoLock:
    """A lock for state only ever touched from one thread (the asyncio face): costs nothing."""

    __slots__ = ()

    def acquire(self, blocking: bool = True) -> bool:
        return True

    def release(self) -> None:
        pass

    def __enter__(self) -> bool:
        return True

    def __exit__(self, *exc: object) -> None:
        pass


NO_LOCK = NoLock()
