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
