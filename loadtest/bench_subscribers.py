"""The fan-out row's subscribers: many SUB connections to the front's updates endpoint, timing
when a marked event reaches each.

Timing 1,000 arrivals is itself work: in the bench's own event loop, on the engine's
pure-Python sockets, the receiving side would take longer than the sending side and the row
would measure the bench. So when pyzmq is installed the subscribers are libzmq sockets in a
child process (libzmq reads them on its own thread; the child stamps each arrival right after
its poll returns, with the same monotonic clock as the bench). Without pyzmq they are engine
sockets in the bench's loop (:class:`InProcessSubscribers`), and the report says so.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from multiprocessing.connection import Connection
from typing import Any

from loadtest.bench_child import ask_child_to_stop, start_child


def have_pyzmq() -> bool:
    return importlib.util.find_spec("zmq") is not None


class RemoteSubscribers:
    """``count`` pyzmq SUB sockets subscribed to ``topic``, in a child process."""

    kind = "libzmq (pyzmq) in a child process"

    def __init__(
        self, updates: str, count: int, topic: bytes, server_key: bytes | None = None
    ) -> None:
        self.count = count
        self._done: dict[bytes, list[float]] = {}
        self._process, self._conn = start_child(
            _child, (updates, count, topic, server_key), "subscriber"
        )

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

    def close(self) -> None:
        ask_child_to_stop(self._process, self._conn, 10)


def _child(
    updates: str, count: int, topic: bytes, server_key: bytes | None, conn: Connection
) -> None:
    import select

    import zmq

    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, count + 64)
    if server_key is not None:  # a CURVE front: one client pair for all (the front admits any)
        ctx.curve_serverkey = server_key
        ctx.curve_publickey, ctx.curve_secretkey = zmq.curve_keypair()
    # Waits go through epoll on each socket's ZMQ_FD, not zmq.Poller: zmq_poll looks at every
    # one of the 1,000 sockets on each call, and one event's arrivals wake this loop many
    # times. epoll hands back only the sockets that were signalled: 17 ms of this process's CPU
    # per event instead of 21-33, and libzmq's own XPUB reached them in 16-17 ms instead of
    # 18-26. ZMQ_FD signals edges: a signalled socket is read until EAGAIN, and every socket
    # is read once after connecting.
    poller = select.epoll()
    by_fd: dict[int, Any] = {}
    for _ in range(count):
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(updates)
        sock.setsockopt(zmq.SUBSCRIBE, topic)
        fd = sock.getsockopt(zmq.FD)
        by_fd[fd] = sock
        poller.register(fd, select.EPOLLIN)
    poller.register(conn.fileno(), select.EPOLLIN)
    conn.send(("ready",))
    watching: dict[bytes, list[float]] = {}
    pending = list(by_fd)  # read each once: what arrived before its FD was watched
    try:
        while True:
            ready = pending or [fd for fd, _ in poller.poll(1.0)]
            pending = []
            now = time.perf_counter()
            # Commands first: a "watch" must be in place before the event it announces is read.
            while conn.poll():
                command = conn.recv()
                if command[0] == "stop":
                    return
                if command[0] == "watch":
                    watching[command[1]] = []
                elif command[0] == "report":
                    conn.send(("done", command[1], watching.pop(command[1], [])))
            for fd in ready:
                sock = by_fd.get(fd)
                if sock is not None:
                    _read(sock, now, watching, count, conn)
    finally:
        poller.close()
        ctx.destroy(linger=0)


def _read(sock: Any, now: float, watching: dict[bytes, list[float]], count: int, conn: Any) -> None:
    import zmq

    while True:
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        payload = frames[-1]
        for marker, times in list(watching.items()):
            if marker in payload:
                times.append(now)
                if len(times) >= count:
                    conn.send(("done", marker, watching.pop(marker)))
