"""The fan-out row's subscribers: many SUB connections to the front's updates endpoint, timing
when a marked event reaches each.

Timing 1,000 arrivals is itself work: in the bench's own event loop, on the engine's
pure-Python sockets, the receiving side would take longer than the sending side and the row
would measure the bench. So when pyzmq is installed the subscribers are libzmq connections in
a child process: one SUB socket connected ``count`` times, each connection its own CURVE
session with its own subscription (libzmq reads them on its own thread; the child stamps each
arrival as it takes it, with the same monotonic clock as the bench). Without pyzmq they are
engine sockets in the bench's loop (:class:`InProcessSubscribers`), and the report says so.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from multiprocessing.connection import Connection

from loadtest.bench_child import ask_child_to_stop, start_child
from loadtest.bench_crowd import cpu_seconds


def have_pyzmq() -> bool:
    return importlib.util.find_spec("zmq") is not None


class RemoteSubscribers:
    """SUB connections subscribed to ``topic``, in a child process: for each region (the
    front's updates endpoint, or each relay's), its endpoint, its CURVE key (None: cleartext)
    and how many connections."""

    kind = "libzmq (pyzmq) connections in a child process"

    def __init__(self, regions: list[tuple[str, bytes | None, int]], topic: bytes) -> None:
        self.count = sum(count for _, _, count in regions)
        self._done: dict[bytes, list[float]] = {}
        plan = [(source_addressed(updates, count), key) for updates, key, count in regions]
        self._process, self._conn = start_child(_child, (plan, topic), "subscriber")

    def watch(self, marker: bytes) -> None:
        self._conn.send(("watch", marker))

    def complete(self, marker: bytes) -> bool:
        """Whether every subscriber has the marked event (reads what the child reported)."""
        while self._conn.poll():
            _, done, times = self._conn.recv()
            self._done[done] = times
        return marker in self._done

    async def finish(self, marker: bytes, timeout: float) -> list[float]:
        """The arrival times of the marked event (fewer than ``count`` if some never came)."""
        deadline = time.perf_counter() + timeout
        while not self.complete(marker) and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        if marker not in self._done:
            self._conn.send(("report", marker))
            while not self.complete(marker):
                await asyncio.sleep(0.001)
        return self._done.pop(marker)

    def cpu(self) -> float:
        """CPU seconds the subscribers' process has spent (from /proc)."""
        return cpu_seconds(self._process.pid) if self._process.pid is not None else 0.0

    def close(self) -> None:
        ask_child_to_stop(self._process, self._conn, 10)


def source_addressed(updates: str, count: int) -> list[str]:
    """``count`` endpoint strings for the same loopback tcp ``updates`` endpoint (the bench's
    own server), each from its own loopback source address (``tcp://127.0.A.B:0;HOST:PORT``).

    libzmq keeps one connection per endpoint string on a SUB socket (a repeated connect is
    ignored), and the whole of 127.0.0.0/8 is this machine: distinct sources make distinct
    strings, so one socket holds ``count`` connections. ValueError for any other endpoint.
    """
    scheme = "tcp://"
    target = updates.removeprefix(scheme)
    if not (updates.startswith(scheme) and target.startswith("127.")) or count > MAX_SOURCES:
        raise ValueError(f"cannot open {count} subscriber connections to {updates!r}")
    return [f"{scheme}127.0.{k // 250}.{k % 250 + 2}:0;{target}" for k in range(count)]


#: Loopback source addresses source_addressed hands out (127.0.0.2 to 127.0.255.251).
MAX_SOURCES = 256 * 250


def _child(plan: list[tuple[list[str], bytes | None]], topic: bytes, conn: Connection) -> None:
    import zmq

    ctx = zmq.Context()
    # One SUB socket per region with a connection per subscriber, each its own CURVE session
    # and subscription: the region's publisher sends that many copies, each sealed for its
    # connection, exactly as to as many remote subscribers. One socket fair-queues them all, so
    # this process wakes once for many arrivals; a socket per subscriber (waited on through
    # epoll and ZMQ_FD) cost it 19-21 ms of CPU per event against 15-16 ms now, and its last
    # arrival trailed the front's sends.
    poller = zmq.Poller()
    subs = []
    count = 0
    for endpoints, server_key in plan:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        if server_key is not None:  # CURVE: one client pair for all (the server admits any)
            sub.curve_serverkey = server_key
            sub.curve_publickey, sub.curve_secretkey = zmq.curve_keypair()
        sub.setsockopt(zmq.SUBSCRIBE, topic)
        for endpoint in endpoints:
            sub.connect(endpoint)
        poller.register(sub, zmq.POLLIN)
        subs.append(sub)
        count += len(endpoints)
    poller.register(conn.fileno(), zmq.POLLIN)
    conn.send(("ready",))
    watching: dict[bytes, list[float]] = {}
    clock = time.perf_counter
    try:
        while True:
            poller.poll(1000)
            if not _obey(conn, watching):
                return
            for sub in subs:
                while True:
                    try:
                        payload = sub.recv_multipart(zmq.NOBLOCK)[-1]
                    except zmq.Again:
                        break
                    now = clock()
                    if not _stamp(payload, now, watching, count, conn):
                        # Not watched: perhaps its "watch" came after this loop's check.
                        if not _obey(conn, watching):
                            return
                        _stamp(payload, now, watching, count, conn)
    finally:
        ctx.destroy(linger=0)


def _obey(conn: Connection, watching: dict[bytes, list[float]]) -> bool:
    """Carry out the bench's commands waiting on the pipe; False once told to stop."""
    while conn.poll():
        try:
            command = conn.recv()
        except (EOFError, OSError):
            return False  # the bench is gone: stop, as if told to
        if command[0] == "stop":
            return False
        if command[0] == "watch":
            watching[command[1]] = []
        elif command[0] == "report":
            conn.send(("done", command[1], watching.pop(command[1], [])))
    return True


def _stamp(
    payload: bytes, now: float, watching: dict[bytes, list[float]], count: int, conn: Connection
) -> bool:
    """Record an arrival of a watched marker (reporting it once all ``count`` are in)."""
    for marker, times in watching.items():
        if marker in payload:
            times.append(now)
            if len(times) >= count:
                conn.send(("done", marker, watching.pop(marker)))
            return True
    return False
