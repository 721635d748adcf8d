"""Devices, as pyzmq's zmq.devices: the forwarding functions, which run in the calling thread,
and the device classes that make their own sockets and run in this thread, a thread of their
own or a process."""

from __future__ import annotations

from .background import (
    Device,
    MonitoredQueue,
    ProcessDevice,
    ProcessMonitoredQueue,
    ProcessProxy,
    ProcessProxySteerable,
    Proxy,
    ProxySteerable,
    ThreadDevice,
    ThreadMonitoredQueue,
    ThreadProxy,
    ThreadProxySteerable,
)
from .forwarding import PROXY_BATCH, device, monitored_queue, proxy, proxy_steerable

__all__ = [
    "PROXY_BATCH",
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
    "device",
    "monitored_queue",
    "proxy",
    "proxy_steerable",
]
