"""The sync face's raw transport closes only once everything written has gone out, including
what its link writes from resume_writing just before closing (as a lingering link does)."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from engine.transport.rawsock import RawTransport

#: Small kernel buffers, so that every write is partial and the transport's own buffer is used.
KERNEL_BUFFER = 16 * 1024
HEAD = bytes(range(256)) * 4096  # 1 MiB
TAIL = bytes(range(255, -1, -1)) * 16384  # 4 MiB
TIMEOUT_S = 30


class Lingering:
    """A protocol that, once writing resumes, writes its last bytes and closes, as a link does
    whose socket was closed with messages still queued."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.transport: Any = None
        self.resumed = 0
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        self.resumed += 1
        if self.resumed == 1:
            self.transport.write(TAIL)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


def test_bytes_written_from_resume_writing_before_close_all_arrive() -> None:
    sender, receiver = socket.socketpair()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_BUFFER)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, KERNEL_BUFFER)
    sender.setblocking(False)
    received = bytearray()

    def read_all() -> None:
        with receiver:
            receiver.settimeout(TIMEOUT_S)
            while chunk := receiver.recv(65536):
                received.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    loop = asyncio.new_event_loop()
    try:
        protocol = Lingering(loop)

        async def write_then_wait() -> BaseException | None:
            transport = RawTransport(loop, sender, protocol)
            # Resume only once the buffer is empty: the write from resume_writing then starts
            # on an empty buffer, and its unsent part is what a stale "drained" dropped.
            transport.set_write_buffer_limits(high=64 * 1024, low=0)
            transport.write(HEAD)
            return await asyncio.wait_for(protocol.lost, TIMEOUT_S)

        assert loop.run_until_complete(write_then_wait()) is None
    finally:
        loop.close()
    reader.join(TIMEOUT_S)
    assert protocol.resumed >= 1
    assert len(received) == len(HEAD) + len(TAIL)
    assert bytes(received) == HEAD + TAIL


class _Recorder:
    """The socket as the transport sees it, noting every send after it was closed."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.closed = False
        self.sends_after_close = 0

    def send(self, data: bytes) -> int:
        if self.closed:
            self.sends_after_close += 1
        return self._sock.send(data)

    def close(self) -> None:
        self.closed = True
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _GateForThread:
    """The transport's write lock, but the thread named here waits at its door until `open`
    is set: the writer has looked at `_closed` and not yet taken the lock."""

    def __init__(self, lock: Any, thread_name: str) -> None:
        self._lock = lock
        self._thread_name = thread_name
        self.at_door = threading.Event()
        self.open = threading.Event()

    def __enter__(self) -> None:
        if threading.current_thread().name == self._thread_name:
            self.at_door.set()
            self.open.wait(TIMEOUT_S)
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class _Quiet:
    def connection_made(self, transport: Any) -> None:
        pass

    def connection_lost(self, exc: BaseException | None) -> None:
        pass


def test_a_write_racing_the_close_does_not_touch_the_closed_socket() -> None:
    """A user thread's write that saw the transport open, then lost the race to the loop's
    close, must not send: the close runs under the read lock, not the write lock, so that send
    could meet it, and with it a socket number another file has taken."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    loop = asyncio.new_event_loop()
    try:
        recorder = _Recorder(ours)
        transport = RawTransport(loop, recorder, _Quiet())  # type: ignore[arg-type]
        gate = _GateForThread(transport._out_lock, "late-writer")
        transport._out_lock = gate
        writer = threading.Thread(target=transport.write, args=(b"late",), name="late-writer")
        writer.start()
        assert gate.at_door.wait(TIMEOUT_S)
        transport.abort()  # the loop's close: under the write lock, then the read lock
        gate.open.set()
        writer.join(TIMEOUT_S)
        assert recorder.closed
        assert recorder.sends_after_close == 0
    finally:
        loop.close()
        theirs.close()
