"""PollerFace: pyzmq's Poller, written once for both faces: engine sockets and raw descriptors.

Readiness is checked the same way on both faces: each engine socket's EVENTS, and the raw file
descriptors with a poll that does not block. Waiting is engine.waiting's algorithm over all the
registered sockets at once; a face's Poller supplies only the waiter (what it sleeps on: the
sockets' eventfds and the raw descriptors, or a future they resolve) and how to run the steps.
"""

from __future__ import annotations

import select as _select
from typing import Any

from . import constants as c
from .face import SocketFace
from .waiting import NOTHING, Steps, timeout_ms, wait_steps

_TO_OS = {c.POLLIN: _select.POLLIN, c.POLLOUT: _select.POLLOUT, c.POLLERR: _select.POLLERR}


def os_mask(flags: int) -> int:
    """POLLIN/POLLOUT/POLLERR as select.poll spells them."""
    return sum(v for k, v in _TO_OS.items() if flags & k)


def engine_mask(revents: int, flags: int) -> int:
    """A descriptor's readiness as libzmq's zmq_poll reports it: POLLIN and POLLOUT as asked
    for (`flags`), and POLLERR for anything else the kernel says (a hang-up, an error, a
    closed descriptor) whether asked for or not. A pipe whose writer has gone is POLLERR, not
    POLLIN, until it has data."""
    mask = 0
    if revents & _select.POLLIN and flags & c.POLLIN:
        mask |= c.POLLIN
    if revents & _select.POLLOUT and flags & c.POLLOUT:
        mask |= c.POLLOUT
    if revents & ~(_select.POLLIN | _select.POLLOUT):
        mask |= c.POLLERR
    return mask


def fileno(item: Any) -> int:
    if isinstance(item, int):
        return item
    try:
        get = item.fileno
    except AttributeError:  # pyzmq says TypeError: the caller passed the wrong kind of thing
        raise TypeError(
            f"cannot poll a {type(item).__name__}: expected an engine socket, a file "
            "descriptor or an object with fileno()"
        ) from None
    return get()


class PollerFace:
    """`poll(ms)` returns [(socket_or_fd, events)] for what is ready."""

    def __init__(self) -> None:
        self.sockets: list[tuple[Any, int]] = []

    def __contains__(self, socket: Any) -> bool:
        return any(s == socket for s, _ in self.sockets)

    def register(self, socket: Any, flags: int = c.POLLIN | c.POLLOUT) -> None:
        if not flags:
            if socket in self:
                self.unregister(socket)
            return
        for i, (s, _) in enumerate(self.sockets):
            if s == socket:
                self.sockets[i] = (socket, flags)
                return
        self.sockets.append((socket, flags))

    def modify(self, socket: Any, flags: int = c.POLLIN | c.POLLOUT) -> None:
        self.register(socket, flags)

    def unregister(self, socket: Any) -> None:
        for i, (s, _) in enumerate(self.sockets):
            if s == socket:
                del self.sockets[i]
                return
        raise KeyError(socket)

    @staticmethod
    def _ready(
        registered: list[tuple[Any, int, int]], raw_poller: Any | None
    ) -> list[tuple[Any, int]]:
        """What is ready, in the order it was registered (as pyzmq reports it). A native
        source is reported by its descriptor, as pyzmq's Poller reports it (an object with
        fileno() as well): code checks `events.get(sock.fileno())`. Each registration of a
        descriptor is reported, as in libzmq, even when two name the same one."""
        revents = dict(raw_poller.poll(0)) if raw_poller is not None else {}
        ready = []
        for item, flags, fd in registered:
            if fd < 0:
                if ev := item._events() & flags:
                    ready.append((item, ev))
            elif (rev := revents.get(fd)) and (ev := engine_mask(rev, flags)):
                ready.append((fd, ev))
        return ready

    def poll(self, timeout: float | None = None) -> Any:
        """Wait up to `timeout` milliseconds (None or negative: forever)."""
        wait_ms = timeout_ms(timeout)  # first: a timeout of the wrong kind is a TypeError even
        # when something is ready at once, as in pyzmq
        engine: list[SocketFace] = []
        raw_masks: dict[int, int] = {}  # one descriptor named twice is polled once
        registered: list[tuple[Any, int, int]] = []  # (socket or source, flags, fd or -1)
        for item, flags in self.sockets:
            if isinstance(item, SocketFace):
                engine.append(item)
                registered.append((item, flags, -1))
                continue
            fd = fileno(item)
            if fd < 0:
                continue  # never ready, as the kernel's poll (and so libzmq) ignores it
            raw_masks[fd] = raw_masks.get(fd, 0) | flags
            registered.append((item, flags, fd))
        raw_poller = None
        if raw_masks:
            raw_poller = _select.poll()
            for fd, flags in raw_masks.items():
                raw_poller.register(fd, os_mask(flags))
        ready = self._ready(registered, raw_poller)
        if ready or timeout == 0:
            return self._done(ready)

        def attempt() -> Any:
            return self._ready(registered, raw_poller) or NOTHING

        def check_open() -> None:
            for sock in engine:
                if sock._core.closed:
                    sock._check_still_open()  # ETERM when the context went away, else ENOTSOCK

        waiter = self._waiter(engine, list(raw_masks.items()))
        cores = [s._core for s in engine]
        steps = wait_steps(cores, attempt, wait_ms, waiter, check_open, list)
        return self._run(steps, waiter)

    # -- supplied by each face ------------------------------------------------------------------

    def _waiter(self, sockets: list[Any], raw: list[tuple[Any, int]]) -> Any:
        raise NotImplementedError

    def _run(self, steps: Steps, waiter: Any) -> Any:
        raise NotImplementedError

    def _done(self, value: Any) -> Any:
        raise NotImplementedError
