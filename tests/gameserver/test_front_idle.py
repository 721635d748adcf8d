"""An idle front sleeps until its next heartbeat or tick, and what needs it sooner wakes it."""

from __future__ import annotations

import asyncio
import time

from gameserver.front import MAX_WAIT_S, Front
from gameserver.protocol import request_job

LOCAL = "tcp://127.0.0.1:0"
WAIT = 20.0
#: Heartbeats and ticks an hour apart: anything that ends sooner was woken, not timed out.
HOUR = 3600.0


def _front() -> Front:
    return Front(
        actions_bind=LOCAL,
        updates_bind=LOCAL,
        workers_bind=LOCAL,
        heartbeat_interval=HOUR,
        tick_interval=HOUR,
    )


def test_an_idle_front_sleeps_until_its_heartbeat_or_tick() -> None:
    async def scenario() -> None:
        front = _front()
        try:
            now = time.monotonic()
            front.core.heartbeat_at, front._tick_due = now + 2.0, now + 5.0
            assert front._housekeeping_wait(now) == 2.0  # not MAX_WAIT_S slices
            front._tick_due = now + 1.5
            assert front._housekeeping_wait(now) == 1.5

            # A login waiting its turn is looked at every MAX_WAIT_S (its slot may go stale).
            front.logins.offer([b"peer", b""], request_job(b"{}"), workers=1)
            assert front._housekeeping_wait(now) == MAX_WAIT_S
        finally:
            front.close(linger=0)

    asyncio.run(scenario())


def test_shutdown_wakes_a_sleeping_front_at_once() -> None:
    async def scenario() -> None:
        front = _front()
        try:
            running = asyncio.create_task(front.run())
            while front._woken is None:  # housekeeping asleep, until its hour-long timer
                await asyncio.sleep(0.01)
            front.shutdown()
            await asyncio.wait_for(running, WAIT)  # nothing in flight: the drain is over
        finally:
            front.close(linger=0)

    asyncio.run(scenario())
