"""Heartbeat wheels: one timer for the ZMTP heartbeats of many links.

A link keeps its own heartbeat deadlines (when to PING, when the peer is silent for too long);
a wheel only decides when each link looks at them. The wheel knows a link and its socket's
transport side through the two small interfaces below, which ZMTPLink and the socket's
endpoints implement, so this module needs neither.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

#: Slots of a heartbeat wheel: one slot's links are checked every period / WHEEL_SLOTS.
WHEEL_SLOTS = 32
#: Links a slot takes before the next slot is used. A wheel with few links uses few slots, so
#: it turns (and wakes its loop) a few times a period, not WHEEL_SLOTS times, and their PINGs
#: and the peers' PONGs come in groups that find the code warm; 64 sealed PINGs (about 20 us
#: each on the fan-out's figures) hold the loop 1-2 ms, not the tens of ms of a thousand.
LINKS_PER_SLOT = 64


class WheelHost(Protocol):
    """A socket's transport side, as its wheels see it (engine.transport.Endpoints)."""

    loop: asyncio.AbstractEventLoop
    #: The socket's wheels, one per check period.
    heartbeats: dict[float, HeartbeatWheel]


class WheelMember(Protocol):
    """A link on a wheel (ZMTPLink)."""

    host: WheelHost
    closed: bool
    #: The wheel the link is on, and its slot there (set and cleared by the wheel).
    heartbeat_wheel: HeartbeatWheel | None
    heartbeat_slot: dict[WheelMember, None] | None

    def heartbeat(self, now: float) -> float:
        """Send a PING or drop a silent peer as the link's deadlines say; the check period
        the link wants from now on (0: none)."""
        ...


class HeartbeatWheel:
    """One timer for the heartbeats of all of a socket's links that share a check period.

    A timer per link cost a TimerHandle, a heap push and a heap pop per link per period: at
    1,000 connections that was most of the front's heartbeat cost (py-spy, issue 12). A wheel
    has WHEEL_SLOTS slots and turns one slot every period / WHEEL_SLOTS (skipping empty ones),
    so each link is still checked once per period, and the PINGs of many links leave in
    groups of at most about LINKS_PER_SLOT rather than in one burst that would hold the loop
    (1,000 sealed PINGs at once took tens of ms). Each link keeps its own deadlines, so a
    silent peer is dropped as before (at most one period after its deadline).
    """

    __slots__ = ("cursor", "host", "period", "size", "slots", "timer")

    def __init__(self, host: WheelHost, period: float) -> None:
        self.host = host
        self.period = period
        #: dicts as ordered sets of links; the one at `cursor` is checked next.
        self.slots: list[dict[WheelMember, None]] = [{} for _ in range(WHEEL_SLOTS)]
        self.cursor = 0
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None

    @staticmethod
    def join(link: WheelMember, period: float) -> None:
        """Put `link` on its socket's wheel for `period` (made, and started, on first use).

        A link goes to the emptiest of the first ceil(links / LINKS_PER_SLOT) slots, not to the
        one due next: a thousand links that connect within one slot's time would otherwise
        share a slot, and their PINGs a burst. A link's first PING still waits HEARTBEAT_IVL
        (its own deadline); only its checks are grouped.
        """
        host = link.host
        wheels = host.heartbeats
        wheel = wheels.get(period)
        if wheel is None:
            wheel = wheels[period] = HeartbeatWheel(host, period)
        slots = wheel.slots
        in_use = min(WHEEL_SLOTS, wheel.size // LINKS_PER_SLOT + 1)
        index = min(range(in_use), key=lambda i: len(slots[i]))
        slot = slots[index]
        slot[link] = None
        wheel.size += 1
        link.heartbeat_wheel = wheel
        link.heartbeat_slot = slot
        if wheel.timer is None:
            wheel.cursor = (index - 1) % WHEEL_SLOTS  # turns to the new link's slot first
            wheel._schedule_next()

    def discard(self, link: WheelMember) -> None:
        """Take `link` off this wheel (it closed, or wants another period)."""
        slot = link.heartbeat_slot
        if slot is not None and slot.pop(link, False) is None:
            self.size -= 1
        link.heartbeat_wheel = link.heartbeat_slot = None
        if not self.size:  # the last link went: no timer left behind on the loop
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.host.heartbeats.get(self.period) is self:
                del self.host.heartbeats[self.period]

    def turn(self) -> None:
        """Check the links of one slot; a link whose period changed (the peer's TTL) moves
        wheels. The timer then skips the empty slots (a socket with one link: one turn per
        period, as its own timer would)."""
        self.timer = None
        slot = self.slots[self.cursor]
        now = self.host.loop.time()
        period = self.period
        for link in tuple(slot):
            wanted = link.heartbeat(now)
            if wanted != period and link.heartbeat_wheel is self:
                self.discard(link)
                if wanted > 0 and not link.closed:
                    HeartbeatWheel.join(link, wanted)
        if self.size:
            self._schedule_next()

    def _schedule_next(self) -> None:
        slots = self.slots
        steps = 1
        while not slots[(self.cursor + steps) % WHEEL_SLOTS]:
            steps += 1  # size > 0: some slot (this one at worst, WHEEL_SLOTS steps on) has links
        self.cursor = (self.cursor + steps) % WHEEL_SLOTS
        self.timer = self.host.loop.call_later(steps * self.period / WHEEL_SLOTS, self.turn)
