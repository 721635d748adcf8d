"""The load generator's own garbage collector, kept out of the latencies it measures.

A Locust worker process runs hundreds of simulated players as greenlets. A collection stops
all of them at once, and every request in flight meanwhile is timed as if the server had been
slow. At `crossroads loadtest -u 1000 --processes 2` each worker process made 14 full
(generation 2) collections in a 90 s run, up to 92-95 ms each, and about 110 middle ones over
2 ms (gc.callbacks, issue 12): the run's p99 was 110 ms while the server's own pauses were 12-24 ms.

What a player builds when it starts (its client, sockets, protocol state) lives until the run
ends, and it is what those collections kept walking. So, as the server does once start-up is
over (gameserver.collector), the process collects once, freezes what survives and raises the
young generation's threshold, and then freezes again shortly after each wave of players has
started: their state leaves the collector's generations, and the collections that remain walk
only what is in flight. That is 11,000-16,000 objects whatever the threshold (players' messages
and timers on their way), so a young collection costs about the same however rarely it runs:
at CPython's default threshold of 700 they ran every second or so, 2-12 ms each.

A freeze also keeps whatever cyclic garbage is waiting for a collection at that moment. That
is bounded: freezes happen only while players keep starting (at most one per FREEZE_EVERY_S),
never during a steady run.
"""

from __future__ import annotations

import gc

import gevent

from gameserver import collector

#: How long after a player has started its state is frozen: one freeze covers every player
#: that started in the meantime (Locust starts them in waves, one each second).
FREEZE_EVERY_S = 1.0


class StartupFreezer:
    """Freezes the state of players once they have started (one per load generator process)."""

    def __init__(self) -> None:
        self._pending = False
        self._waiter: gevent.Greenlet | None = None
        self.freezes = 0

    def settle(self) -> None:
        """Start-up of the process is over: collect once, freeze what survives, and collect
        young objects rarely, as the server does."""
        collector.settle()

    def player_started(self) -> None:
        """A player has built its long-lived state: freeze it within FREEZE_EVERY_S."""
        self._pending = True
        if self._waiter is None or self._waiter.dead:
            self._waiter = gevent.spawn_later(FREEZE_EVERY_S, self._freeze)

    def _freeze(self) -> None:
        if self._pending:
            self._pending = False
            gc.freeze()
            self.freezes += 1
