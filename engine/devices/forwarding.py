"""The forwarding loops: proxy, proxy_steerable, monitored_queue and device, as in pyzmq (sync
sockets, run by the calling thread until the context is terminated)."""

from __future__ import annotations

import struct
from typing import Any

from .. import constants as c
from ..errors import Again, ZMQError
from ..poll import Poller

#: Messages moved from one side per poll, so a flood on one side cannot starve the other.
PROXY_BATCH = 256


class _Counters:
    __slots__ = ("bytes_in", "bytes_out", "msgs_in", "msgs_out")

    def __init__(self) -> None:
        self.msgs_in = self.bytes_in = self.msgs_out = self.bytes_out = 0


def _forward(
    src: Any,
    dst: Any,
    capture: Any,
    src_stats: _Counters,
    dst_stats: _Counters,
    prefix: bytes | None = None,
    swap: bool = False,
) -> None:
    for _ in range(PROXY_BATCH):
        try:
            msg = src.recv_multipart(c.DONTWAIT)
        except Again:
            return
        size = sum(len(f) for f in msg)
        parts = len(msg)  # libzmq's counters count message parts (zmq_msg_t), not messages
        src_stats.msgs_in += parts
        src_stats.bytes_in += size
        if swap and len(msg) >= 2:
            msg[0], msg[1] = msg[1], msg[0]
        if capture is not None:
            capture.send_multipart([prefix, *msg] if prefix is not None else msg)
        dst.send_multipart(msg)
        dst_stats.msgs_out += parts
        dst_stats.bytes_out += size


def _run(
    frontend: Any,
    backend: Any,
    capture: Any = None,
    control: Any = None,
    prefixes: tuple[bytes, bytes] | None = None,
    swap: bool = False,
) -> None:
    for role, sock in (("frontend", frontend), ("backend", backend)):
        if not hasattr(sock, "recv_multipart"):  # a None would fail later, in the poller
            raise TypeError(f"the proxy's {role} must be a socket, not {type(sock).__name__}")
    front, back = _Counters(), _Counters()
    poller = Poller()
    poller.register(frontend, c.POLLIN)
    if backend is not frontend:
        poller.register(backend, c.POLLIN)
    if control is not None:
        poller.register(control, c.POLLIN)
    paused = False
    in_prefix, out_prefix = prefixes if prefixes else (None, None)
    while True:
        ready = dict(poller.poll())
        if control is not None and control in ready:
            command = control.recv()
            if command != b"STATISTICS":
                _acknowledge(control)
            if command == b"TERMINATE":
                return
            if command == b"PAUSE":
                paused = True
            elif command == b"RESUME":
                paused = False
            elif command == b"STATISTICS":
                counters = (
                    front.msgs_in,
                    front.bytes_in,
                    front.msgs_out,
                    front.bytes_out,
                    back.msgs_in,
                    back.bytes_in,
                    back.msgs_out,
                    back.bytes_out,
                )
                control.send_multipart([struct.pack("=Q", n) for n in counters])
        if paused:
            if frontend in poller:
                poller.unregister(frontend)
                if backend in poller:
                    poller.unregister(backend)
            continue
        if frontend not in poller:
            poller.register(frontend, c.POLLIN)
            if backend is not frontend:
                poller.register(backend, c.POLLIN)
            continue
        if ready.get(frontend, 0) & c.POLLIN:
            _forward(frontend, backend, capture, front, back, in_prefix, swap)
        if backend is not frontend and ready.get(backend, 0) & c.POLLIN:
            _forward(backend, frontend, capture, back, front, out_prefix, swap)


def _acknowledge(control: Any) -> None:
    """An empty reply to each command, as libzmq 4.3.5 sends one, so a REQ may steer (it
    cannot send twice without one). Never a wait: a PAIR controller that reads no replies
    does not stop the proxy at its high-water mark, and a SUB one cannot send at all."""
    try:
        control.send(b"", c.DONTWAIT)
    except ZMQError:
        pass


def proxy(frontend: Any, backend: Any, capture: Any = None) -> None:
    """Forward messages both ways until the context is terminated (raises ContextTerminated)."""
    _run(frontend, backend, capture)


def device(device_type: int, frontend: Any, backend: Any) -> None:
    """pyzmq's older name for :func:`proxy` (zmq_device). ``device_type`` (QUEUE, FORWARDER,
    STREAMER) is not looked at: in libzmq since 3.x every type forwards both ways."""
    _run(frontend, backend)


def proxy_steerable(frontend: Any, backend: Any, capture: Any = None, control: Any = None) -> None:
    """A proxy that obeys PAUSE, RESUME, TERMINATE and STATISTICS on `control`."""
    _run(frontend, backend, capture, control)


def monitored_queue(
    in_socket: Any,
    out_socket: Any,
    mon_socket: Any,
    in_prefix: bytes = b"in",
    out_prefix: bytes = b"out",
) -> None:
    """A proxy that also publishes every message on `mon_socket`, prefixed by its direction."""
    swap = in_socket.type == c.ROUTER and out_socket.type == c.ROUTER
    _run(in_socket, out_socket, mon_socket, prefixes=(in_prefix, out_prefix), swap=swap)
