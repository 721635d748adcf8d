"""A socket's monitor, as pyzmq's: `monitor(addr)` sends the socket's events on a PAIR bound at
`addr`, `get_monitor_socket()` hands out a PAIR connected to it, `disable_monitor()` stops it.
Mixed into SocketFace, written once for both faces: the events are sent from the socket's I/O
loop, where every other event is sent, and the face's `_call_on_loop` reaches it.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

from . import constants as c
from .errors import LoopGone

_MONITOR_EVENT = struct.Struct("<HI")
#: How long the PAIR that sends a monitor's events lingers when the monitor stops: long enough
#: for the last events (the socket's CLOSED, then MONITOR_STOPPED), queued on its way out, to
#: reach the watcher, which libzmq's inproc hands over at once; short, for a watcher whose
#: queue is full (RCVHWM) holds up the context's term() that long at most.
MONITOR_LINGER_MS = 200


class MonitoringFace:
    """Mixed into SocketFace, which declares the state used here (`_monitor_sink`,
    `_monitor_watcher`) and supplies `context`, `_endpoints`, `_check_open` and
    `_call_on_loop`."""

    __slots__ = ()  # the face declares its state
    context: Any
    _endpoints: Any
    _monitor_sink: Any
    _monitor_watcher: Any
    _check_open: Callable[[], None]
    _call_on_loop: Callable[..., Any]

    def get_monitor_socket(self, events: int = c.EVENT_ALL, addr: str | None = None) -> Any:
        """A PAIR socket receiving this socket's events (see `recv_monitor_message`); while
        it is open and the monitor on, the same one again (pyzmq's), whatever the arguments."""
        watcher = self._monitor_watcher
        if watcher is not None and not watcher.closed:
            return watcher
        addr = addr or f"inproc://monitor.{id(self):x}.{time.monotonic_ns():x}"
        self.monitor(addr, events)
        watcher = self.context.socket(c.PAIR)
        watcher.connect(addr)
        object.__setattr__(self, "_monitor_watcher", watcher)
        return watcher

    def monitor(self, addr: str | None, events: int = c.EVENT_ALL) -> None:
        """pyzmq's zmq_socket_monitor: this socket's events go out on a PAIR bound at `addr`
        (inproc); None stops them."""
        self._check_open()
        if addr is None:
            self.disable_monitor()
            return
        sink = self.context.socket(c.PAIR)
        sink.bind(addr)
        sink.linger = MONITOR_LINGER_MS
        sink_core = sink._core
        pack = _MONITOR_EVENT.pack

        def report(event: int, value: int, endpoint: str) -> None:
            # Runs on this socket's I/O loop, the only user of the sink socket.
            if event & events and not sink_core.closed:
                sink_core.send([pack(event, value & 0xFFFFFFFF), endpoint.encode()])

        self._stop_monitor(announce=False)  # libzmq tells a replaced monitor nothing
        object.__setattr__(self, "_monitor_watcher", None)  # (it hears the old monitor)
        self._endpoints.monitor = report
        object.__setattr__(self, "_monitor_sink", sink)

    def disable_monitor(self) -> None:
        """Stop the events. As libzmq, the last one a monitor hears is MONITOR_STOPPED (value
        0, no endpoint; if its mask has it), when the monitor is stopped or its socket
        closed: a loop reading events until then ends."""
        self._stop_monitor(announce=True)
        object.__setattr__(self, "_monitor_watcher", None)

    def _stop_monitor(self, announce: bool) -> None:
        endpoints = self._endpoints
        sink = self._monitor_sink
        if sink is None:
            endpoints.monitor = None
            return
        object.__setattr__(self, "_monitor_sink", None)
        report = endpoints.monitor

        def stop() -> None:  # on the loop, where every other event is sent
            endpoints.monitor = None
            if announce and report is not None:
                report(c.EVENT_MONITOR_STOPPED, 0, "")

        try:
            self._call_on_loop(stop)
        except LoopGone:
            endpoints.monitor = None  # the context is gone, and the monitor's socket with it
        sink.close()
