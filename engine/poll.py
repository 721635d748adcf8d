"""Poller and select for the sync face: engine sockets mixed with raw file descriptors."""

from __future__ import annotations

import select as _select
import time
from typing import Any

from . import constants as c
from .sync import Socket

_TO_OS = {c.POLLIN: _select.POLLIN, c.POLLOUT: _select.POLLOUT, c.POLLERR: _select.POLLERR}


def _os_mask(flags: int) -> int:
    return sum(v for k, v in _TO_OS.items() if flags & k)


def _engine_mask(revents: int) -> int:
    mask = 0
    if revents & (_select.POLLIN | _select.POLLHUP):
        mask |= c.POLLIN
    if revents & _select.POLLOUT:
        mask |= c.POLLOUT
    if revents & (_select.POLLERR | _select.POLLNVAL):
        mask |= c.POLLERR
    return mask


class Poller:
    """pyzmq's Poller: `poll(ms)` returns [(socket_or_fd, events)] for what is ready."""

    def __init__(self) -> None:
        self.sockets: list[tuple[Any, int]] = []
        self._map: dict[Any, int] = {}

    def __contains__(self, socket: Any) -> bool:
        return socket in self._map

    def register(self, socket: Any, flags: int = c.POLLIN | c.POLLOUT) -> None:
        if not flags:
            self.unregister(socket)
            return
        if socket in self._map:
            self.sockets[self._map[socket]] = (socket, flags)
            return
        self._map[socket] = len(self.sockets)
        self.sockets.append((socket, flags))

    def modify(self, socket: Any, flags: int = c.POLLIN | c.POLLOUT) -> None:
        self.register(socket, flags)

    def unregister(self, socket: Any) -> None:
        index = self._map.pop(socket)
        del self.sockets[index]
        for s, i in list(self._map.items()):
            if i > index:
                self._map[s] = i - 1

    def poll(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        """Wait up to `timeout` milliseconds (None or negative: forever)."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout / 1000
        engine_socks = [(s, f) for s, f in self.sockets if isinstance(s, Socket)]
        raw = [(s, f) for s, f in self.sockets if not isinstance(s, Socket)]
        while True:
            for sock, _ in engine_socks:
                sock._signal.clear()
                sock._core.arm()
            ready = [(s, ev) for s, f in engine_socks if (ev := s._events() & f)]
            poller = _select.poll()
            fds: dict[int, Any] = {}
            for sock, flags in raw:
                fd = sock if isinstance(sock, int) else sock.fileno()
                fds[fd] = sock
                poller.register(fd, _os_mask(flags))
            for sock, _ in engine_socks:
                poller.register(sock._signal.fd, _select.POLLIN)
            if ready:
                wait_ms = 0
            elif deadline is None:
                wait_ms = -1
            else:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000 + 0.999))
            for fd, revents in poller.poll(wait_ms):
                if fd in fds:
                    ready.append((fds[fd], _engine_mask(revents)))
            if not ready:
                ready = [(s, ev) for s, f in engine_socks if (ev := s._events() & f)]
            for sock, _ in engine_socks:
                if sock._core.closed:
                    sock._check_open()  # ETERM when the context went away, else ENOTSOCK
            if ready or (deadline is not None and time.monotonic() >= deadline):
                return ready


def select(
    rlist: list[Any], wlist: list[Any], xlist: list[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """pyzmq's zmq.select: like select.select, for engine sockets and fds (timeout in s)."""
    poller = Poller()
    flags: dict[Any, int] = {}
    for items, flag in ((rlist, c.POLLIN), (wlist, c.POLLOUT), (xlist, c.POLLERR)):
        for s in items:
            flags[s] = flags.get(s, 0) | flag
    for s, f in flags.items():
        poller.register(s, f)
    ready = dict(poller.poll(None if timeout is None else timeout * 1000))
    return (
        [s for s in rlist if ready.get(s, 0) & c.POLLIN],
        [s for s in wlist if ready.get(s, 0) & c.POLLOUT],
        [s for s in xlist if ready.get(s, 0) & c.POLLERR],
    )
