"""`crossroads bench engine mem`: what a binding socket keeps per accepted connection.

A server's memory grows with its connections: a game front holds one per player. The binding
end (a ROUTER, where a server's clients arrive) reads its resident set before and after
`count` peers have connected and each sent one message (so every handshake is over and every
connection holds its pipe, codec and transport), and reports the growth per connection. The
connecting end opens the peers in one process, with the same implementation and face.

One peer connects and is answered before the first reading, so that what the first
connection sets up once (a loop's selector, the read buffer, lazily imported modules) is not
counted as per-connection memory.
"""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

#: Peers in a memory run: enough that the growth dwarfs one page's rounding, few enough that
#: pyzmq's two descriptors per socket (the connection and its mailbox) stay under the limits.
MEM_CONNECTIONS = 1000
#: After the last message, time for what the loop finishes lazily (handshake timers, buffers
#: released) before the second reading.
SETTLE_S = 0.5


def rss_kib() -> int:
    """This process's resident set, KiB (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


async def _recv(sock: Any, aio: bool) -> list[bytes]:
    return await sock.recv_multipart() if aio else sock.recv_multipart()


async def _pause(seconds: float, aio: bool) -> None:
    if aio:
        await asyncio.sleep(seconds)
    else:
        import time

        time.sleep(seconds)


async def mem_router(job: Any, base: Any, ctx_mod: Any, sig: Any, aio: bool) -> None:
    """ROUTER: bind; after the first peer's message, read RSS; after `count` more, again."""
    ctx = ctx_mod.Context()
    if hasattr(base, "MAX_SOCKETS") and job.impl == "pyzmq":
        ctx.set(base.MAX_SOCKETS, job.count + 64)
    sock = ctx.socket(base.ROUTER)
    try:
        sock.setsockopt(base.RCVHWM, 0)
        sock.bind(job.address)
        value = sock.getsockopt(base.LAST_ENDPOINT)
        sig.queue.put(("endpoint", value.decode() if isinstance(value, bytes) else str(value)))
        await _recv(sock, aio)  # the first peer: set-up paid once
        gc.collect()
        await _pause(SETTLE_S, aio)
        before = rss_kib()
        sig.go.set()
        for _ in range(job.count):
            await _recv(sock, aio)
        gc.collect()
        await _pause(SETTLE_S, aio)
        grown = rss_kib() - before
        sig.queue.put(("result", {"connections": job.count, "kib_per_conn": grown / job.count}))
        await _wait(sig.done, job, aio)
    finally:
        sock.close(linger=0)
        ctx.destroy(linger=0)


async def mem_dealers(job: Any, base: Any, ctx_mod: Any, sig: Any, aio: bool) -> None:
    """One DEALER first; once the ROUTER has read its memory, `count` more, each sending one
    message; all stay connected until the parent has the result."""
    ctx = ctx_mod.Context()
    if job.impl == "pyzmq":
        ctx.set(base.MAX_SOCKETS, job.count + 64)
    socks: list[Any] = []
    try:
        for i in range(job.count + 1):
            if i == 1:
                await _wait(sig.go, job, aio)
            sock = ctx.socket(base.DEALER)
            sock.setsockopt(base.LINGER, 0)
            sock.connect(job.address)
            socks.append(sock)
            if aio:
                await sock.send(b"hello")
            else:
                sock.send(b"hello")
        await _wait(sig.done, job, aio)
    finally:
        for sock in socks:
            sock.close(linger=0)
        ctx.destroy(linger=0)


async def _wait(event: Any, job: Any, aio: bool) -> None:
    """Wait for a parent's event; on asyncio, keep the loop turning meanwhile."""
    if aio:
        await asyncio.get_running_loop().run_in_executor(None, event.wait, job.wait_s)
    else:
        event.wait(job.wait_s)
