"""A real server on fixed free ports, so tests can restart it in place (killed at teardown)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "game"))  # serverkit

from serverkit import Server

from loadtest.ports import unused_port


class Servers:
    """Starts ``crossroads serve`` on fixed ports; every one started is killed at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = f"sqlite:///{tmp_path / 'game.db'}"
        self.tmp_path = tmp_path
        # The port below is free too: the front announces its key there (the convention
        # `crossroads play` follows to learn it, as a real player's client does).
        actions = unused_port(with_port_below=True)
        ports = [actions]
        while len(ports) < 3:  # neither the key port (below actions) nor one taken twice
            port = unused_port()
            if port not in (actions - 1, *ports):
                ports.append(port)
        self.flags = [
            f"--{what}-bind=tcp://127.0.0.1:{port}"
            for what, port in zip(("actions", "updates", "workers"), ports, strict=True)
        ]
        self.started: list[Server] = []

    def start(self) -> Server:
        log = self.tmp_path / f"serve{len(self.started)}.log"
        server = Server(self.store, log, 1, *self.flags)
        self.started.append(server)
        return server
