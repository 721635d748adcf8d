"""Bandwidth and filtering, counted by the kernel (``ss``) on the publisher's own port.

N subscribers straight on a publisher cost N copies of every event on its link; behind a relay,
one copy. Topics nobody in the region wants never reach the relay's link at all.
"""

from __future__ import annotations

import asyncio

from relaykit import WAIT, Subscribers, settled_bytes

import engine.asyncio as azmq

#: Subscribers in the region: the issue's 50, all in this process, one TCP connection each.
N = 50
#: The event load: enough bytes that handshakes and probes are noise next to it (< 0.1%).
COUNT, SIZE = 400, 500
TOPIC = "room.hall"


async def publish_to(pub, endpoint: str, relay=None) -> tuple[int, dict]:
    """Bytes leaving ``pub``'s port while N subscribers of ``endpoint`` each receive the load,
    and the relay's stats (if any) while they are still connected."""
    ctx = azmq.Context()
    subs = Subscribers(ctx, endpoint, TOPIC, N)
    try:
        await subs.ready(pub, TOPIC)
        await subs.until(lambda r: all(len(x) >= 1 for x in r))
        before = await settled_bytes(pub.port)
        subs.reset()
        await pub.run(f"burst {TOPIC} {COUNT} {SIZE}")
        await subs.until(lambda r: all(sum(len(m[1]) == SIZE for m in x) == COUNT for x in r))
        sent = await settled_bytes(pub.port) - before
        return sent, (await relay.astats() if relay else {})
    finally:
        await subs.close()
        ctx.term()


def test_relay_cuts_publisher_bytes_to_one_nth(publisher, relay) -> None:
    direct_pub = publisher()
    direct, _ = asyncio.run(asyncio.wait_for(publish_to(direct_pub, direct_pub.endpoint), WAIT * 2))

    pub = publisher()
    r = relay(pub.endpoint, "--hwm", "0")
    relayed, stats = asyncio.run(asyncio.wait_for(publish_to(pub, r.endpoint, r), WAIT * 2))

    ratio = relayed / (direct / N)
    print(f"\nbytes from publisher: direct {direct}, via relay {relayed}, ratio to 1/N {ratio:.4f}")
    assert direct >= N * COUNT * SIZE  # sanity: the kernel saw every copy go out
    assert 0.95 <= ratio <= 1.05

    print(f"relay stats: {stats}")
    assert stats["subscribers"] == N
    assert stats["topics_upstream"] == 1
    assert stats["bytes_in"] >= COUNT * SIZE
    assert stats["fanout"] >= N * 0.95  # every byte in went to (nearly) all N; probes to fewer


async def filtered_scenario(pub, r) -> tuple[int, int]:
    ctx = azmq.Context()
    subs = Subscribers(ctx, r.endpoint, "room.a", 1)
    try:
        await pub.line(r"^sub room\.a$")
        await subs.ready(pub, "room.a")
        before = await settled_bytes(pub.port)
        await pub.run("burst room.b 500 1000")  # nobody in the region wants room.b
        await pub.run("burst room.a 1 10")  # a marker behind it on the same link
        await subs.until(lambda rs: any(len(m[1]) == 10 for m in rs[0]))
        unwanted = await settled_bytes(pub.port) - before
        assert not any(m[0].startswith(b"room.b") for m in subs.received[0])
    finally:
        await subs.close()
        ctx.term()
    # The last local subscriber left: the relay cancels room.a upstream.
    await pub.line(r"^unsub room\.a$")
    before = await settled_bytes(pub.port)
    await pub.run("burst room.a 200 1000")
    after_leave = await settled_bytes(pub.port) - before
    return unwanted, after_leave


def test_unsubscribed_topics_cost_zero_upstream_bytes(publisher, relay) -> None:
    pub = publisher()
    r = relay(pub.endpoint)
    unwanted, after_leave = asyncio.run(asyncio.wait_for(filtered_scenario(pub, r), WAIT * 2))
    # Only the 10-byte marker (+ ZMTP framing) crossed, not 500 kB of room.b.
    assert unwanted < 100, unwanted
    assert after_leave < 100, after_leave
    assert r.stats()["topics_upstream"] == 0
