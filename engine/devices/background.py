"""Devices that make their own sockets: pyzmq's Device, Proxy, ProxySteerable and
MonitoredQueue, run by the calling thread (`start()` returns when the device ends), a thread of
their own (`Thread...`) or a process (`Process...`).

A device records what each of its sockets is to bind, connect and set, and makes them when it
starts, in the context its `context_factory` gives (the process-wide instance; a fresh context
in a process device's child). It runs until that context is terminated, then closes them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .. import constants as c
from ..errors import ContextTerminated, ZMQBindError
from ..sync import Context
from .forwarding import device, monitored_queue, proxy, proxy_steerable

#: How often `join()` looks whether a device run by the calling thread has ended.
JOIN_POLL_S = 0.01
#: Ports a `bind_*_to_random_port` looks at before it gives up, as pyzmq's devices (each
#: one found may be one the device reserved already).
RESERVE_TRIES = 5


class _SocketPlan:
    """What one of a device's sockets is to be: its type, binds, connects and options."""

    __slots__ = ("binds", "connects", "options", "socket_type")

    def __init__(self, socket_type: int) -> None:
        self.socket_type = socket_type
        self.binds: list[str] = []
        self.connects: list[str] = []
        self.options: list[tuple[int, Any]] = []

    def reserve_port(self, addr: str, reserved: set[str], *args: Any, **kwargs: Any) -> int:
        """A free port for a bind to come (as pyzmq: bound to find one, then released), and
        not one in `reserved` (the device's earlier ones, free again until it starts): up to
        RESERVE_TRIES ports, each held while the next is looked for, then ZMQBindError."""
        scratch = Context()
        try:
            sock = scratch.socket(c.PAIR)
            for _ in range(RESERVE_TRIES):
                port = sock.bind_to_random_port(addr, *args, **kwargs)
                if f"{addr}:{port}" not in reserved:
                    break
            else:
                raise ZMQBindError("Could not reserve random port.")
        finally:
            scratch.destroy(linger=0)
        reserved.add(f"{addr}:{port}")
        self.binds.append(f"{addr}:{port}")
        return port

    def make(self, context: Any) -> Any:
        return self.apply(context.socket(self.socket_type))

    def apply(self, sock: Any) -> Any:
        """Set, bind and connect `sock` as planned."""
        for option, value in self.options:
            sock.setsockopt(option, value)
        for addr in self.binds:
            sock.bind(addr)
        for addr in self.connects:
            sock.connect(addr)
        return sock


class Device:
    """Forwards between an in and an out socket, made when it starts: `bind_in`, `connect_in`
    and `setsockopt_in` (and the `_out` forms) say how. An `out_type` below 0 makes the in
    socket serve both sides (what it receives goes back out through it, as pyzmq's
    single-socket devices); the `_out` calls then apply to it. `device_type` is kept for
    pyzmq's sake; every device forwards both ways, as libzmq's since 3.x."""

    context_factory: Callable[[], Any] = Context.instance
    #: Whether a thread or process device dies with the program (pyzmq's default).
    daemon = True

    def __init__(
        self, device_type: int = c.QUEUE, in_type: int | None = None, out_type: int | None = None
    ) -> None:
        if in_type is None or out_type is None:
            raise TypeError("a device needs in_type and out_type (socket types)")
        self.device_type = device_type
        self.plans = {"in": _SocketPlan(in_type), "out": _SocketPlan(out_type)}
        self.done = False
        self._sockets: list[Any] = []
        #: The addresses bind_*_to_random_port handed out, so that none is handed out twice.
        self._reserved: set[str] = set()

    @property
    def in_type(self) -> int:
        return self.plans["in"].socket_type

    @property
    def out_type(self) -> int:
        return self.plans["out"].socket_type

    def bind_in(self, addr: str) -> None:
        self.plans["in"].binds.append(addr)

    def bind_in_to_random_port(self, addr: str, *args: Any, **kwargs: Any) -> int:
        return self.plans["in"].reserve_port(addr, self._reserved, *args, **kwargs)

    def connect_in(self, addr: str) -> None:
        self.plans["in"].connects.append(addr)

    def setsockopt_in(self, option: int, value: Any) -> None:
        self.plans["in"].options.append((option, value))

    def bind_out(self, addr: str) -> None:
        self.plans["out"].binds.append(addr)

    def bind_out_to_random_port(self, addr: str, *args: Any, **kwargs: Any) -> int:
        return self.plans["out"].reserve_port(addr, self._reserved, *args, **kwargs)

    def connect_out(self, addr: str) -> None:
        self.plans["out"].connects.append(addr)

    def setsockopt_out(self, option: int, value: Any) -> None:
        self.plans["out"].options.append((option, value))

    def _setup_sockets(self) -> dict[str, Any]:
        context = self.context_factory()
        sockets: dict[str, Any] = {}
        for role, plan in self.plans.items():
            if role == "out" and plan.socket_type < 0:  # one socket for both sides
                sockets[role] = plan.apply(sockets["in"])
            else:
                sockets[role] = plan.make(context)
                self._sockets.append(sockets[role])
        return sockets

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)
        self._sockets = []

    def _forward(self, sockets: dict[str, Any]) -> None:
        device(self.device_type, sockets["in"], sockets["out"])

    def run_device(self) -> None:
        """Make the sockets and forward until the context is terminated."""
        try:
            self._forward(self._setup_sockets())
        except ContextTerminated:
            pass  # the way a device ends
        finally:
            self._close_sockets()

    def run(self) -> None:
        try:
            self.run_device()
        finally:
            self.done = True

    def start(self) -> Any:
        """Run the device; here, that returns when it ends."""
        return self.run()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the device has ended (at most `timeout` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done and (deadline is None or time.monotonic() < deadline):
            time.sleep(JOIN_POLL_S)


class _Background(Device):
    """A device run by a launcher of its own: a thread, or a process."""

    launcher: Any = None

    def _launch(self) -> Any:
        return threading.Thread(target=self.run, daemon=self.daemon)

    def start(self) -> Any:
        self.launcher = self._launch()
        return self.launcher.start()

    def join(self, timeout: float | None = None) -> None:
        if self.launcher is not None:
            self.launcher.join(timeout)


class ThreadDevice(_Background):
    """A Device in a thread of its own."""


class ProcessDevice(_Background):
    """A Device in a process of its own, with a context made there."""

    context_factory = Context

    def _launch(self) -> Any:
        import multiprocessing  # here: `import engine` need not pay for it

        return multiprocessing.Process(target=self.run, daemon=self.daemon)


class Proxy(Device):
    """A device that also sends what passes, both ways, to a monitor socket (zmq_proxy's
    capture): `bind_mon`, `connect_mon`, `setsockopt_mon`."""

    def __init__(self, in_type: int, out_type: int, mon_type: int = c.PUB) -> None:
        super().__init__(c.QUEUE, in_type, out_type)
        self.plans["mon"] = _SocketPlan(mon_type)

    def bind_mon(self, addr: str) -> None:
        self.plans["mon"].binds.append(addr)

    def bind_mon_to_random_port(self, addr: str, *args: Any, **kwargs: Any) -> int:
        return self.plans["mon"].reserve_port(addr, self._reserved, *args, **kwargs)

    def connect_mon(self, addr: str) -> None:
        self.plans["mon"].connects.append(addr)

    def setsockopt_mon(self, option: int, value: Any) -> None:
        self.plans["mon"].options.append((option, value))

    def _forward(self, sockets: dict[str, Any]) -> None:
        proxy(sockets["in"], sockets["out"], sockets["mon"])


class ProxySteerable(Proxy):
    """A Proxy steered by PAUSE, RESUME, TERMINATE and STATISTICS on a control socket:
    `bind_ctrl`, `connect_ctrl`, `setsockopt_ctrl`."""

    def __init__(
        self, in_type: int, out_type: int, mon_type: int = c.PUB, ctrl_type: int | None = None
    ) -> None:
        super().__init__(in_type, out_type, mon_type)
        if ctrl_type is None:
            raise TypeError("a steerable proxy needs ctrl_type (its control socket's type)")
        self.plans["ctrl"] = _SocketPlan(ctrl_type)

    def bind_ctrl(self, addr: str) -> None:
        self.plans["ctrl"].binds.append(addr)

    def bind_ctrl_to_random_port(self, addr: str, *args: Any, **kwargs: Any) -> int:
        return self.plans["ctrl"].reserve_port(addr, self._reserved, *args, **kwargs)

    def connect_ctrl(self, addr: str) -> None:
        self.plans["ctrl"].connects.append(addr)

    def setsockopt_ctrl(self, option: int, value: Any) -> None:
        self.plans["ctrl"].options.append((option, value))

    def _forward(self, sockets: dict[str, Any]) -> None:
        proxy_steerable(sockets["in"], sockets["out"], sockets["mon"], sockets["ctrl"])


class MonitoredQueue(Proxy):
    """A Proxy whose monitor copies carry a first frame naming their direction (`in_prefix`
    for what came in, `out_prefix` for what came back), as zmq.devices.monitored_queue."""

    def __init__(
        self,
        in_type: int,
        out_type: int,
        mon_type: int = c.PUB,
        in_prefix: bytes = b"in",
        out_prefix: bytes = b"out",
    ) -> None:
        super().__init__(in_type, out_type, mon_type)
        self.prefixes = (in_prefix, out_prefix)

    def _forward(self, sockets: dict[str, Any]) -> None:
        in_prefix, out_prefix = self.prefixes
        monitored_queue(sockets["in"], sockets["out"], sockets["mon"], in_prefix, out_prefix)


class ThreadProxy(Proxy, ThreadDevice):
    """A Proxy in a thread of its own."""


class ProcessProxy(Proxy, ProcessDevice):
    """A Proxy in a process of its own."""


class ThreadProxySteerable(ProxySteerable, ThreadDevice):
    """A ProxySteerable in a thread of its own."""


class ProcessProxySteerable(ProxySteerable, ProcessDevice):
    """A ProxySteerable in a process of its own."""


class ThreadMonitoredQueue(MonitoredQueue, ThreadDevice):
    """A MonitoredQueue in a thread of its own."""


class ProcessMonitoredQueue(MonitoredQueue, ProcessDevice):
    """A MonitoredQueue in a process of its own."""


__all__ = [
    "Device",
    "MonitoredQueue",
    "ProcessDevice",
    "ProcessMonitoredQueue",
    "ProcessProxy",
    "ProcessProxySteerable",
    "Proxy",
    "ProxySteerable",
    "ThreadDevice",
    "ThreadMonitoredQueue",
    "ThreadProxy",
    "ThreadProxySteerable",
]
