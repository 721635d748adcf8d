"""The bench's crowd of players: what their connections read goes to their cores from the
loop pass that read it (no reading task), and a crowd whose context goes ends quietly."""

from __future__ import annotations

import asyncio
from typing import Any

from loadtest.bench_crowd import Crowd

#: An endpoint nobody listens on: the players' connections keep retrying.
NOBODY = "tcp://127.0.0.1:9"


def test_a_crowd_reads_without_tasks_and_ends_quietly() -> None:
    async def scenario() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        failures: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: failures.append(context))
        crowd = Crowd(NOBODY, NOBODY)
        crowd.add_player("reader", listen=True)
        await asyncio.sleep(0)
        files = {t.get_coro().cr_code.co_filename for t in asyncio.all_tasks()}
        # The answers and updates are read by callbacks: the only tasks are the engine's own
        # (its connections' dialling).
        assert not any(f.endswith("/loadtest/bench_crowd.py") for f in files), files
        # What a failing row's reconnection does: the context goes under the connections.
        crowd.context.destroy(linger=0)
        for _ in range(3):
            await asyncio.sleep(0)
        return failures

    assert asyncio.run(scenario()) == []
