"""`crossroads bench players --rows floor`: what a server of this shape costs before any work.

A relay that does nothing: the bench's message goes to a front process, which hands it to one
of its worker processes as the game's front does (warm dispatch: the worker that answered last
if it owes nothing, else one that owes nothing, else the next in turn); the worker sends it
straight back and the front returns it to the bench. Plain asyncio protocols over loopback
TCP, as the real server's transports are, but no ZMTP, no CURVE, no game: each process only
wakes, reads and writes. At ``--rate`` messages a second each message travels alone, as an
action does in the rate rows, so the CPU each process spends per message is what this machine
charges for three wake-ups (the front twice, a worker once), the floor under the rate rows'
CPU per action.

The front and the workers are spawned children (bench_child), killed by PID when the row ends.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from loadtest.bench_child import start_child, stop_child
from loadtest.bench_crowd import cpu_seconds

#: About the size of a `look` request on the wire; the floor does not depend on it.
MESSAGE = b"x" * 160
#: Longest wait for the front to report its workers attached, and for one answer.
ATTACH_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 5.0


def _no_delay(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """Each message written at once, as the real server's transports do (TCP_NODELAY)."""
    assert isinstance(transport, asyncio.Transport)
    transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return transport


class _Front:
    """The front's relaying: a client message to a worker, a worker's back to the client."""

    def __init__(self, workers: int, conn: Connection) -> None:
        self.expected = workers
        self.conn = conn
        self.workers: list[asyncio.Transport] = []
        #: Bytes each worker has yet to send back (they echo): 0 is a worker holding nothing.
        self.owed: list[int] = []
        self.last = 0  # the worker that answered last
        self.client: asyncio.Transport | None = None
        self.turn = 0

    def attach_worker(self, transport: asyncio.Transport) -> int:
        self.workers.append(transport)
        self.owed.append(0)
        if len(self.workers) == self.expected:
            self.conn.send(("attached",))
        return len(self.workers) - 1

    def from_client(self, data: bytes) -> None:
        if not self.workers:
            return  # nobody to hand it to yet: the bench waits for "attached" first
        owed = self.owed
        if owed[self.last] == 0:
            worker = self.last
        elif 0 in owed:
            worker = owed.index(0)
        else:
            worker = self.turn % len(self.workers)
            self.turn += 1
        owed[worker] += len(data)
        self.workers[worker].write(data)

    def from_worker(self, worker: int, data: bytes) -> None:
        self.owed[worker] -= len(data)
        self.last = worker
        if self.client is not None:
            self.client.write(data)


class _Side(asyncio.Protocol):
    """One connection of the front; ``worker`` says which side it is on."""

    def __init__(self, front: _Front, worker: bool) -> None:
        self.front = front
        self.worker = worker
        self.index = -1  # which worker, on the workers' side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = _no_delay(transport)
        if self.worker:
            self.index = self.front.attach_worker(transport)
        else:
            self.front.client = transport

    def data_received(self, data: bytes) -> None:
        if self.worker:
            self.front.from_worker(self.index, data)
        else:
            self.front.from_client(data)


class _Echo(asyncio.Protocol):
    """A worker: every byte straight back."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = _no_delay(transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def _front_main(workers: int, conn: Connection) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        front = _Front(workers, conn)
        to_workers = await loop.create_server(lambda: _Side(front, True), "127.0.0.1", 0)
        to_client = await loop.create_server(lambda: _Side(front, False), "127.0.0.1", 0)
        conn.send(("ready",))
        ports = (to_workers.sockets[0].getsockname()[1], to_client.sockets[0].getsockname()[1])
        conn.send(("ports", *ports))
        await loop.create_future()  # relays until killed

    asyncio.run(main())


def _worker_main(port: int, conn: Connection) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(_Echo, "127.0.0.1", port)
        conn.send(("ready",))
        await loop.create_future()  # echoes until killed

    asyncio.run(main())


@dataclass
class FloorRound:
    messages: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    cpu: dict[str, float] = field(default_factory=dict)


class FloorRelay:
    """The front and ``workers`` worker processes, and the bench's connection to the front."""

    def __init__(self, workers: int) -> None:
        self.children: list[tuple[BaseProcess, Connection]] = []
        self.names: list[str] = []
        try:
            front, conn = start_child(_front_main, (workers,), "floor front")
            self.children.append((front, conn))
            self.names.append("front")
            said = conn.recv() if conn.poll(ATTACH_TIMEOUT_S) else None
            if not (isinstance(said, tuple) and said[0] == "ports"):
                raise RuntimeError("the floor front did not say its ports")
            worker_port, client_port = said[1], said[2]
            for i in range(1, workers + 1):
                self.children.append(start_child(_worker_main, (worker_port,), "floor worker"))
                self.names.append(f"w{i}")
            if not conn.poll(ATTACH_TIMEOUT_S) or conn.recv() != ("attached",):
                raise RuntimeError("the floor front's workers did not attach")
            self.sock = socket.create_connection(("127.0.0.1", client_port), ANSWER_TIMEOUT_S)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            self.stop()
            raise

    def cpu(self) -> dict[str, float]:
        return {
            name: cpu_seconds(process.pid or 0)
            for name, (process, _) in zip(self.names, self.children, strict=True)
        }

    def exchange(self) -> float:
        """One message there and back; its round trip in ms."""
        start = time.perf_counter()
        self.sock.sendall(MESSAGE)
        got = 0
        while got < len(MESSAGE):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the floor front closed the connection")
            got += len(chunk)
        return (time.perf_counter() - start) * 1000

    def paced(self, rate: float, seconds: float) -> FloorRound:
        """Messages at ``rate`` a second, each sent alone, for ``seconds``; CPU read around."""
        rnd = FloorRound()
        count = max(1, round(rate * seconds))
        before = self.cpu()
        started = due = time.monotonic()
        for _ in range(count):
            rnd.latencies_ms.append(self.exchange())
            due += 1 / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        after = self.cpu()
        rnd.messages = count
        rnd.seconds = time.monotonic() - started
        rnd.cpu = {name: after[name] - before[name] for name in after}
        return rnd

    def stop(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()
        for process, conn in self.children:
            stop_child(process, conn, 0)  # nothing to finish: killed by PID
        self.children.clear()


__all__ = ["MESSAGE", "FloorRelay", "FloorRound"]
