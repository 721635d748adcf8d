"""The bench's crowd of players: its reading tasks end quietly when the crowd's context goes."""

from __future__ import annotations

import asyncio

from loadtest.bench_crowd import Crowd

#: An endpoint nobody listens on: the players' connections keep retrying, their readers wait.
NOBODY = "tcp://127.0.0.1:9"


def test_readers_end_without_an_error_when_the_context_is_destroyed() -> None:
    async def scenario() -> list[BaseException | None]:
        crowd = Crowd(NOBODY, NOBODY)
        player = crowd.add_player("reader", listen=True)
        readers = ("Crowd._read_answers", "Crowd._read_updates")
        tasks = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ in readers]
        assert player.reader in tasks and len(tasks) == 2  # the answers' and the updates' readers
        await asyncio.sleep(0)  # both are waiting in recv_multipart
        # What a failing row's reconnection does to a reader close() does not wait for: the
        # context goes while the reader still waits.
        crowd.context.destroy(linger=0)
        await asyncio.wait(tasks, timeout=10)
        assert all(t.done() for t in tasks)
        return [t.exception() for t in tasks]

    assert asyncio.run(scenario()) == [None, None]
