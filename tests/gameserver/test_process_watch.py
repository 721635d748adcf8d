"""Waiting for a process to end: on a pidfd, without waking up to ask, and without one too."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest

from gameserver.process_watch import process_ended, wait_process_ended

WAIT = 20.0


@pytest.fixture
def sleeper():
    """A child that would live an hour; killed (by PID) at the end whatever happened."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    yield proc
    proc.kill()
    proc.wait()


def test_process_ended_sleeps_on_the_pidfd_until_the_process_ends(sleeper) -> None:
    asks = []

    def alive() -> bool:
        asks.append(1)
        return sleeper.poll() is None

    async def scenario() -> None:
        waiting = asyncio.create_task(process_ended(sleeper.pid, alive, fallback_every=0.01))
        # An observation window: a polling wait would have asked about 20 times in it.
        await asyncio.sleep(0.2)
        assert not waiting.done()
        assert len(asks) == 1  # asked once, after the pidfd was open; then asleep
        sleeper.kill()
        await asyncio.wait_for(waiting, WAIT)

    asyncio.run(scenario())
    assert sleeper.poll() is not None


def test_without_pidfds_it_asks_every_so_often(sleeper, monkeypatch) -> None:
    monkeypatch.delattr(os, "pidfd_open")

    async def scenario() -> None:
        waiting = asyncio.create_task(
            process_ended(sleeper.pid, lambda: sleeper.poll() is None, fallback_every=0.01)
        )
        await asyncio.sleep(0.05)
        assert not waiting.done()
        sleeper.kill()
        await asyncio.wait_for(waiting, WAIT)

    asyncio.run(scenario())


def test_a_process_already_gone_is_seen_at_once() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: its pid may belong to anyone now

    async def scenario() -> None:
        await asyncio.wait_for(process_ended(proc.pid, lambda: proc.poll() is None), WAIT)

    asyncio.run(scenario())


def test_the_blocking_wait_returns_when_the_process_ends(sleeper) -> None:
    done = threading.Event()

    def wait() -> None:
        wait_process_ended(sleeper.pid, lambda: sleeper.poll() is None)
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    assert not done.wait(0.1)
    sleeper.kill()
    assert done.wait(WAIT)
