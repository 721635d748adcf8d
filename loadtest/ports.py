"""A free loopback TCP port for a child process to bind (a local server, Locust's master)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port free now. The child binds it a moment later; should another process
    take it in between, the child fails to bind, clearly, and the caller's run ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
