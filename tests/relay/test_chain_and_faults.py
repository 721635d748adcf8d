"""Relays chained into a tree, relay-stats, and recovery from killed publishers and relays."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from relaykit import REPO_ROOT, WAIT, Subscribers, env, relay_stats

import engine.asyncio as azmq

#: "Every subscriber receives again within a few seconds" of a restart.
RECOVERY_S = 5.0
#: Subscribers behind the relay in the fault test, and the publisher's steady load (msgs/s).
FAULT_SUBSCRIBERS = 50
RATE = 100


def test_chain_propagates_subscriptions_and_events(publisher, relay) -> None:
    pub = publisher()
    a = relay(pub.endpoint)
    b = relay(a.endpoint)

    async def scenario() -> None:
        ctx = azmq.Context()
        subs = Subscribers(ctx, b.endpoint, "room.c", 1)
        try:
            await pub.line(r"^sub room\.c$")  # dc <- A <- B <- subscriber
            await subs.ready(pub, "room.c")
            await pub.run("burst room.c 5 100")
            await subs.until(lambda r: sum(len(m[1]) == 100 for m in r[0]) == 5)
            for r in (a, b):
                stats = await r.astats()
                assert stats["subscribers"] == 1 and stats["topics_upstream"] == 1, stats
                assert stats["messages_in"] >= 6 and stats["fanout"] == 1.0, stats
            table = await asyncio.to_thread(relay_stats, b.stats_endpoint)
            assert "topics subscribed upstream" in table and "fan-out" in table, table
        finally:
            await subs.close()
            ctx.term()
        await pub.line(r"^unsub room\.c$")  # the cancellation climbs the chain too

    asyncio.run(asyncio.wait_for(scenario(), WAIT * 2))
    assert a.stats()["topics_upstream"] == 0


def test_relay_stats_json_and_errors(publisher, relay) -> None:
    r = relay(publisher().endpoint)
    stats = json.loads(relay_stats(r.stats_endpoint, "--json"))
    assert {"bytes_in", "bytes_out", "fanout", "subscribers", "topics_upstream"} <= set(stats)
    for cmd in (["relay", "--help"], ["relay-stats", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "crossroads", *cmd],
            env=env(),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert done.returncode == 0 and "usage:" in done.stdout
    nobody = ["relay-stats", "tcp://127.0.0.1:9", "--timeout", "0.3"]
    done = subprocess.run(
        [sys.executable, "-m", "crossroads", *nobody],
        env=env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 1 and "no answer" in done.stderr


def test_subscribers_recover_from_killed_publisher_and_relay(publisher, relay) -> None:
    pub = publisher()
    r = relay(pub.endpoint)

    async def scenario() -> dict[str, float]:
        ctx = azmq.Context()
        subs = Subscribers(ctx, r.endpoint, "room.f", FAULT_SUBSCRIBERS)
        recovery: dict[str, float] = {}
        try:
            await pub.line(r"^sub room\.f$")
            await pub.run(f"rate room.f {RATE}")
            await subs.until(lambda rs: all(rs))

            # Upstream dies under load and comes back on the same port.
            started = time.monotonic()  # recovery times include the restart itself
            pub.kill()
            pub2 = await asyncio.to_thread(publisher, bind=pub.endpoint)
            await pub2.run(f"rate room.f {RATE}")
            fresh = str(pub2.process.pid).encode() + b" "
            await subs.until(lambda rs: all(any(m[1].startswith(fresh) for m in x) for x in rs))
            recovery["publisher"] = time.monotonic() - started
            await pub2.line(r"^sub room\.f$")  # the relay re-sent its subscription

            # The relay dies and comes back on the same port: subscribers reconnect, resubscribe.
            started = time.monotonic()
            r.kill()
            subs.reset()  # the old relay's connections are gone with it
            r2 = await asyncio.to_thread(relay, pub2.endpoint, bind=r.endpoint)
            await subs.until(lambda rs: all(rs))
            recovery["relay"] = time.monotonic() - started
            stats = await r2.astats()
            assert stats["subscribers"] == FAULT_SUBSCRIBERS and stats["topics_upstream"] == 1
        finally:
            await subs.close()
            ctx.term()
        return recovery

    recovery = asyncio.run(asyncio.wait_for(scenario(), WAIT * 3))
    print(f"\nrecovery (s): {recovery}")
    assert all(seconds < RECOVERY_S for seconds in recovery.values()), recovery
