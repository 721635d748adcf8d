"""Free ports for a process to bind a moment later: a local server, Locust's master,
compose-local's services, the tests' peers and servers restarted in place.

A port found by binding port 0 and letting it go comes from the kernel's ephemeral range, the
range every other port-0 bind and every outgoing connection on the machine draws from, so one
of those can take it before the process it was meant for binds it. These ports come from below
that range, where only explicit binds land: chosen at random (each process its own choice),
and checked free at the time.
"""

from __future__ import annotations

import random
import socket

#: Where Linux says which ports it hands out for port 0 and outgoing connections.
EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
#: Linux's default start of that range, where the file cannot be read.
DEFAULT_EPHEMERAL_LOW = 32768
#: The lowest port given out: clear of the well-known ports, the usual local services and
#: this project's own defaults (7300-7303, 8089, 9300).
LOWEST_PORT = 20_000
#: How many random ports to try before giving up (a port is taken, or its neighbour is).
TRIES = 1_000

_choose = random.SystemRandom()  # not the seeded `random`: parallel processes differ


def unused_port(
    kind: socket.SocketKind = socket.SOCK_STREAM,
    host: str = "127.0.0.1",
    *,
    with_port_below: bool = False,
) -> int:
    """A ``kind`` (tcp or udp) port on ``host`` that nothing is bound to now, from below the
    ephemeral range; with ``with_port_below``, the port under it is free too (where a front
    announces its key)."""
    highest = max(ephemeral_low() - 1, LOWEST_PORT + TRIES)
    for _ in range(TRIES):
        port = _choose.randint(LOWEST_PORT + 1, highest)
        if _free(kind, host, port) and (not with_port_below or _free(kind, host, port - 1)):
            return port
    raise RuntimeError(f"no unused port found between {LOWEST_PORT} and {highest}")


def free_port() -> int:
    """A loopback TCP port free now. Should another process take it before the child binds
    it (below the ephemeral range, only an explicit bind can), the child fails to bind,
    clearly, and the caller's run ends."""
    return unused_port()


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback TCP ports, each free now."""
    ports: list[int] = []
    while len(ports) < count:
        port = unused_port()
        if port not in ports:
            ports.append(port)
    return ports


def ephemeral_low() -> int:
    """The lowest port of the kernel's ephemeral range (Linux; else its usual default)."""
    try:
        with open(EPHEMERAL_RANGE_FILE) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW


def _free(kind: socket.SocketKind, host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
