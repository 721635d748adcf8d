"""The front's pong, encoded straight from its counters, is a valid Pong message."""

from __future__ import annotations

import asyncio

from gameserver.front import Front
from gameserver.protocol import Pong, decode_reply


def test_the_pong_decodes_with_every_counter() -> None:
    async def scenario() -> tuple[dict[str, object], object]:
        local = "tcp://127.0.0.1:0"
        front = Front(actions_bind=local, updates_bind=local, workers_bind=local)
        try:
            front.stats.replies, front.stats.busy = 7, 2
            return front.health(), decode_reply(front.pong())
        finally:
            front.close(linger=0)

    health, pong = asyncio.run(scenario())
    assert isinstance(pong, Pong)
    assert pong.workers == 0 and pong.draining is False
    assert pong.model_extra["replies"] == 7 and pong.model_extra["busy"] == 2
    assert pong.model_extra["logins_waiting"] == 0
    assert {"v", "type", *health} == set(pong.model_dump())
