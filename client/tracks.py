"""In-order delivery of one topic's events, with no I/O: duplicates dropped, gaps noticed.

Every event carries a per-topic sequence number. A subscriber may get them out of order (two
workers' events published in the other order), twice (a retried action republishes its stored
events) or not at all (PUB/SUB drops while disconnected, or at a slow subscriber's high-water
mark). :class:`TopicTrack` holds what arrived early, delivers in order, and says when a
catch-up is needed and what it should cover; :class:`client.protocol.ClientCore` does the
asking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gameserver.protocol import Event

log = logging.getLogger(__name__)

#: Early events held per topic while an earlier one is missing. Holding only saves a catch-up
#: (the server's log has them too), so past this a publisher that sends ever higher seqs costs
#: memory no more: the event is not held, only noted as existing, and repair fetches it.
MAX_HELD_EVENTS = 1000


@dataclass
class TopicTrack:
    """In-order delivery for one topic: duplicates dropped, gaps noticed (no I/O).

    ``cursor`` is the last seq delivered (None: not known yet, events are held). ``wanted`` is
    the highest seq known to exist; ``wanted > cursor`` means a catch-up is needed.
    """

    topic: str
    cursor: int | None = None
    wanted: int = 0
    held: dict[int, Event] = field(default_factory=dict)
    repairing: bool = False
    lost: int = 0  # events that fell out of the server's log before they could be fetched

    def offer(self, event: Event) -> list[Event]:
        """A live event; returns what can now be delivered, in order."""
        if self.cursor is not None and event.seq <= self.cursor:
            return []
        if len(self.held) < MAX_HELD_EVENTS or event.seq in self.held:
            self.held[event.seq] = event
        self.wanted = max(self.wanted, event.seq)
        return self._flush()

    def notice(self, seq: int) -> None:
        """Seq ``seq`` exists, content unknown (private topics)."""
        self.wanted = max(self.wanted, seq)

    @property
    def needs_repair(self) -> bool:
        return self.cursor is not None and self.wanted > self.cursor and not self.repairing

    def start_after_history(self, history: list[Event]) -> list[Event]:
        """Unknown cursor: what the log held is the past; deliver only what comes after it."""
        self.cursor = max((e.seq for e in history), default=0)
        self.held = {s: e for s, e in self.held.items() if s > self.cursor}
        self.wanted = max(self.wanted, self.cursor)
        return self._flush()

    def repaired(self, events: list[Event], truncated: bool, asked_upto: int) -> list[Event]:
        """Merge a catch-up answer. Holes the log no longer covers (below ``asked_upto``, which
        was known to exist when asking) are skipped and counted as lost."""
        for event in events:
            if self.cursor is None or event.seq > self.cursor:
                self.held[event.seq] = event
                self.wanted = max(self.wanted, event.seq)
        out = self._flush()
        if self.cursor is not None and (truncated or self.cursor < asked_upto):
            upto = min(self.held, default=asked_upto + 1) - 1
            if upto > self.cursor and upto <= asked_upto:
                self.lost += upto - self.cursor
                log.warning(
                    "%d event(s) of %s are gone from the log", upto - self.cursor, self.topic
                )
                self.cursor = upto
                out += self._flush()
        return out

    def _flush(self) -> list[Event]:
        out: list[Event] = []
        if self.cursor is None:
            return out
        while self.cursor + 1 in self.held:
            self.cursor += 1
            out.append(self.held.pop(self.cursor))
        return out
