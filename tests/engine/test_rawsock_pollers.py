"""engine.transport.rawsock's table of per-loop pollers is shared by every I/O thread."""

from __future__ import annotations

import asyncio
import threading

from engine.transport import rawsock


def test_poller_for_from_many_threads_at_once() -> None:
    """I/O threads of several contexts start together while closed loops' pollers are still in
    the table: each gets its own poller, and none trips over another's sweep of the closed ones
    (a KeyError there once lost a connection: its accept failed)."""
    errors: list[BaseException] = []

    def io_thread(barrier: threading.Barrier) -> None:
        loop = asyncio.new_event_loop()
        try:
            barrier.wait()
            poller = rawsock.poller_for(loop)
            assert poller.loop is loop
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            loop.close()

    for _ in range(100):
        barrier = threading.Barrier(8)
        threads = [threading.Thread(target=io_thread, args=(barrier,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
