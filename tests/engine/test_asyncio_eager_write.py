"""The asyncio face writes a message at once when its loop has nothing else to run in that pass,
and leaves it to the pass's flush while other work waits there (so messages sent by that work
to the same peer leave together, in one write).

The peer is a sync-face PULL: its own I/O thread reads while this test's loop thread is blocked
in its poll, so what arrives during that poll was written before the loop ran again.
"""

from __future__ import annotations

import asyncio

import engine
import engine.asyncio as ezmq

ARRIVAL_MS = 5000
#: How long to look for a message that must not have been written yet (it cannot arrive
#: while the loop that would write it is blocked here, so the wait only bounds the test).
ABSENCE_MS = 100


async def _connected_push(pull: engine.Socket) -> tuple[ezmq.Context, ezmq.Socket]:
    actx = ezmq.Context()
    push = actx.socket(engine.PUSH)
    push.connect(pull.getsockopt(engine.LAST_ENDPOINT).decode())
    await push.send(b"hello")  # the connection is up once this arrives
    # Waited for on another thread: this loop must run to connect and write.
    assert await asyncio.to_thread(pull.poll, ARRIVAL_MS)
    assert pull.recv() == b"hello"
    await asyncio.sleep(0.001)  # a quiet spell before the next send (EAGER_WRITE_GAP is 50 µs)
    return actx, push


def _pull(ctx: engine.Context) -> engine.Socket:
    pull = ctx.socket(engine.PULL)
    pull.bind("tcp://127.0.0.1:0")
    return pull


def test_a_send_on_an_idle_loop_is_written_before_the_loop_runs_again(
    ctx: engine.Context,
) -> None:
    pull = _pull(ctx)

    async def main() -> None:
        actx, push = await _connected_push(pull)
        await push.send(b"now")  # a done future: no loop pass between this and the poll
        assert pull.poll(ARRIVAL_MS), "the message waited for a loop pass"
        assert pull.recv() == b"now"
        push.close(0)
        actx.term()

    asyncio.run(main())


def test_a_send_while_the_pass_has_more_work_waits_for_its_flush(ctx: engine.Context) -> None:
    pull = _pull(ctx)

    async def main() -> None:
        actx, push = await _connected_push(pull)
        loop = asyncio.get_running_loop()
        other_work = asyncio.Event()
        loop.call_soon(other_work.set)  # something else to run in this pass
        await push.send(b"first")
        await push.send(b"second")
        assert not pull.poll(ABSENCE_MS), "written before the pass's other work ran"
        await other_work.wait()  # the loop runs: its flush writes both
        assert pull.poll(ARRIVAL_MS)
        assert [pull.recv(), pull.recv()] == [b"first", b"second"]
        push.close(0)
        actx.term()

    asyncio.run(main())
