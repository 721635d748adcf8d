"""The front's login queue: password hashing may never starve play.

A login costs a worker ~30 ms of Argon2id; an action costs about a millisecond. Queued together
in arrival order, a flood of 200 registrations would put seconds of hashing in front of every
player's next action. So logins (with their registrations) wait in their own bounded queue at
the front, and only ``slots`` of them are with the workers at any time: one per worker, as
each worker hashes in one low-priority process beside its play (gameserver.worker's
HashingProcess). Everything else goes to the workers first.

The queue is bounded by the time its last entry would wait, estimated from how long recent
logins took: past ``max_wait`` the front answers "server busy, retry" at once, and the client
backs off with jitter. Waiting longer would only make the client's own timeout resend the
login, hashing it twice.

No I/O here: the front offers logins, takes what may go, and reports answers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: Longest estimated wait in the queue before "busy" (well under a client's 4 s try).
DEFAULT_MAX_WAIT_S = 2.0
#: Hard cap on waiting logins, whatever the estimate says.
DEFAULT_MAX_WAITING = 1000
#: A login with the workers longer than this is presumed lost (its worker died and the
#: re-dispatched job's answer went elsewhere): its slot is taken back.
STALE_S = 30.0
#: What a login is assumed to take before any was measured.
INITIAL_LOGIN_S = 0.05
#: Weight of the newest measurement in the moving average of login times.
SMOOTHING = 0.2


def slot_count(workers: int) -> int:
    """Logins with the workers at once: one per worker (at least one)."""
    return max(1, workers)


@dataclass
class LoginQueue:
    """Logins waiting their turn (``msg`` is the whole job for the workers, envelope first)."""

    max_wait: float = DEFAULT_MAX_WAIT_S
    max_waiting: int = DEFAULT_MAX_WAITING
    waiting: deque[tuple[tuple[bytes, ...], list[bytes]]] = field(default_factory=deque)
    waiting_keys: set[tuple[bytes, ...]] = field(default_factory=set)
    #: Envelope -> when it went to the workers.
    in_flight: dict[tuple[bytes, ...], float] = field(default_factory=dict)
    average_s: float = INITIAL_LOGIN_S
    refused: int = 0

    def holds(self, envelope: list[bytes]) -> bool:
        """Whether a login to ``envelope`` is waiting or with the workers (a client's resend
        of it is then dropped, before it costs any budget: its first copy's answer goes
        there)."""
        key = tuple(envelope)
        return key in self.in_flight or key in self.waiting_keys

    def offer(self, envelope: list[bytes], job: list[bytes], workers: int) -> bool:
        """Queue a login; False means "busy" (the queue is full or would wait too long). A
        resend of a login already queued or in flight is accepted and dropped: the first
        copy's answer goes to the same envelope."""
        if self.holds(envelope):
            return True
        key = tuple(envelope)
        expected_wait = (len(self.waiting) + 1) * self.average_s / slot_count(workers)
        if len(self.waiting) >= self.max_waiting or expected_wait > self.max_wait:
            self.refused += 1
            return False
        self.waiting.append((key, [*envelope, *job]))
        self.waiting_keys.add(key)
        return True

    def admit(self, workers: int, now: float) -> list[list[bytes]]:
        """The jobs that may go to the workers now."""
        for key, since in list(self.in_flight.items()):
            if now - since > STALE_S:
                del self.in_flight[key]
        out = []
        slots = slot_count(workers)
        while self.waiting and len(self.in_flight) < slots:
            key, msg = self.waiting.popleft()
            self.waiting_keys.discard(key)
            self.in_flight[key] = now
            out.append(msg)
        return out

    def drop_waiting(self) -> list[list[bytes]]:
        """Every waiting login's envelope, the queue emptied (shutting down)."""
        envelopes = [list(key) for key, _ in self.waiting]
        self.waiting.clear()
        self.waiting_keys.clear()
        return envelopes

    def answered(self, envelope: list[bytes], now: float) -> bool:
        """An answer went back to ``envelope``; True if it was a login's (a slot is free)."""
        since = self.in_flight.pop(tuple(envelope), None)
        if since is None:
            return False
        self.average_s += SMOOTHING * ((now - since) - self.average_s)
        return True
