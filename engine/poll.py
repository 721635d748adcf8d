"""Poller and select for the sync face: engine sockets mixed with raw file descriptors."""

from __future__ import annotations

import select as _select
from typing import Any

from . import constants as c
from .face import SocketFace
from .polling import PollerFace, fileno, os_mask
from .sync import Socket, run_blocking
from .waiting import Steps, timeout_ms


class SignalsWaiter:
    """What a sync Poller sleeps on: every engine socket's eventfd and the raw descriptors."""

    def __init__(self, sockets: list[Socket], raw: list[tuple[Any, int]]) -> None:
        for sock in sockets:
            if not isinstance(sock, Socket):
                # Its event loop moves it, and this wait would block that loop's thread.
                raise TypeError(
                    f"a blocking Poller cannot wait on {sock!r}: poll it with "
                    "engine.asyncio.Poller, or with timeout 0"
                )
        self._signals = [s._signal for s in sockets]
        self._by_fd = {signal.fd: signal for signal in self._signals}
        self._poller = _select.poll()  # gevent makes this cooperative
        for signal in self._signals:
            self._poller.register(signal.fd, _select.POLLIN)
        for item, flags in raw:
            self._poller.register(fileno(item), os_mask(flags))

    def prepare(self) -> None:
        for signal in self._signals:
            signal.clear()

    def wait(self, timeout: float | None) -> None:
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        by_fd = self._by_fd
        for fd, _ in self._poller.poll(ms):
            signal = by_fd.get(fd)
            if signal is not None:
                signal.seen()  # readable: its next clear() must read it


class Poller(PollerFace):
    """pyzmq's Poller: `poll(ms)` returns [(socket_or_fd, events)] for what is ready."""

    def poll(self, timeout: float | None = None) -> Any:
        if not self.sockets:
            # pyzmq's sync poll answers at once when nothing is registered, whatever the
            # timeout (its asyncio Poller sleeps the timeout, as the asyncio face does): with
            # nothing that could wake it, waiting for ever would hang the caller for good.
            timeout_ms(timeout)  # a timeout of the wrong kind is still a TypeError
            return []
        return super().poll(timeout)

    def _waiter(self, sockets: list[Any], raw: list[tuple[Any, int]]) -> SignalsWaiter:
        return SignalsWaiter(sockets, raw)

    def _run(self, steps: Steps, waiter: SignalsWaiter) -> Any:
        return run_blocking(steps, waiter)

    def _done(self, value: Any) -> Any:
        return value


def zmq_poll(sockets: list[tuple[Any, int]], timeout: float | None = -1) -> list[tuple[Any, int]]:
    """pyzmq's zmq.zmq_poll: [(socket or fd, flags)] in, those ready with their events out;
    `timeout` in ms, negative or None to wait for ever."""
    poller = Poller()
    for sock, flags in sockets:
        poller.register(sock, flags)
    return poller.poll(None if timeout is None or timeout < 0 else timeout)


def select(
    rlist: list[Any], wlist: list[Any], xlist: list[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """pyzmq's zmq.select: like select.select, for engine sockets and fds (timeout in s); a
    native source comes back as its descriptor, as in pyzmq."""
    poller = Poller()
    flags: dict[Any, int] = {}
    lists = [[_key(s) for s in items] for items in (rlist, wlist, xlist)]
    for keys, flag in zip(lists, (c.POLLIN, c.POLLOUT, c.POLLERR), strict=True):
        for key in keys:
            flags[key] = flags.get(key, 0) | flag
    for key, f in flags.items():
        poller.register(key, f)
    ready = dict(poller.poll(None if timeout is None else timeout * 1000))
    reads, writes, errors = lists
    return (
        [k for k in reads if ready.get(k, 0) & c.POLLIN],
        [k for k in writes if ready.get(k, 0) & c.POLLOUT],
        [k for k in errors if ready.get(k, 0) & c.POLLERR],
    )


def _key(source: Any) -> Any:
    """An engine socket as itself, anything else as its descriptor."""
    return source if isinstance(source, SocketFace) else fileno(source)
