"""The sync face's direct take while the loop attaches and detaches pipes under it: peers come
and go (each a command the loop queues, clearing `direct`) while the user thread takes every
message straight from the fair-queue. Nothing may be lost, doubled or reordered per peer."""

from __future__ import annotations

import threading

import engine

PEERS = 12
MESSAGES = 400


def test_peers_coming_and_going_lose_and_reorder_nothing(ctx: engine.Context) -> None:
    pull = ctx.socket(engine.PULL)
    pull.setsockopt(engine.RCVHWM, 0)
    pull.setsockopt(engine.RCVTIMEO, 20_000)
    pull.bind("tcp://127.0.0.1:0")
    endpoint = pull.getsockopt(engine.LAST_ENDPOINT).decode()
    failures: list[BaseException] = []

    def peer(number: int) -> None:
        # Each peer connects, sends its numbered messages and leaves (its own context, so its
        # connection really closes): a stream of attach and detach commands on the PULL side.
        try:
            peer_ctx = engine.Context()
            push = peer_ctx.socket(engine.PUSH)
            push.connect(endpoint)
            for i in range(MESSAGES):
                push.send(b"%d %d" % (number, i))
            push.close(linger=10_000)
            peer_ctx.term()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=peer, args=(n,)) for n in range(PEERS)]
    for thread in threads:
        thread.start()
    seen: dict[int, list[int]] = {n: [] for n in range(PEERS)}
    for _ in range(PEERS * MESSAGES):
        number, i = map(int, pull.recv().split())
        seen[number].append(i)
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    assert all(order == list(range(MESSAGES)) for order in seen.values())
    assert pull.poll(50) == 0  # nothing doubled behind them
