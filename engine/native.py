"""Native threading primitives that stay native under gevent's monkey-patching.

Locust runs the sync face under `gevent.monkey.patch_all()`. Whatever the engine's I/O threads
share with the user's threads must then still be a real OS lock, and the I/O thread itself a real
OS thread polling with the real epoll: a greenlet would block the gevent hub. These helpers look
up the unpatched originals when gevent has patched a module, and the module as it is otherwise.
"""

from __future__ import annotations

import selectors
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


def start_native_thread(fn: Callable[[], None]) -> None:
    _original("_thread", "start_new_thread")(fn, ())


def native_selector() -> selectors.BaseSelector:
    # gevent removes EpollSelector (and select.epoll) from the patched modules; the loop of a
    # real thread needs the real ones, which blocks that thread and not the gevent hub.
    try:
        return _original("selectors", "EpollSelector")()
    except AttributeError:
        return selectors.DefaultSelector()


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
