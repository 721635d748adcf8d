"""Handshake pacing: a crowd of new connections cannot hold up an event loop's other work.

A CURVE handshake costs the accepting side about a millisecond of Python and libsodium on the
machine this was measured on (key agreements, the cookie box, the vouch). Two hundred clients
that connect at once hand their handshakes to the loop in the same pass, and every message of
an established peer read in that pass waits until all of them are done: a quarter of a second
in which the application answers nobody.

The pacer lets HANDSHAKE_STEPS_PER_PASS handshake reads run in one pass of the loop. A
connection over that budget keeps the bytes it was given, stops reading, and queues in arrival
order. Each later pass begins by taking the next few from the queue, before that pass's other
callbacks, so a handshake waits a few passes at most behind the crowd and an established peer
waits at most a few handshakes. Only the asyncio face is paced: there the application's own
coroutines share the loop with the handshakes. The sync face's I/O thread runs no user code.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable

#: Handshake reads per pass of the loop. A CURVE server's handshake is about three reads
#: (greeting, HELLO, INITIATE), the costly two about half a millisecond each here; two per pass
#: keep what an established peer waits for to about a millisecond, and still let a crowd of 200
#: through in about 300 passes.
HANDSHAKE_STEPS_PER_PASS = 2


class HandshakePacer:
    """One event loop's budget of handshake reads per pass, and the queue of those that wait."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the pacers are kept in a WeakKeyDictionary by loop, and a strong reference
        # from the value would keep every loop that ever paced a handshake alive.
        self._loop = weakref.ref(loop)
        #: Handshake reads run in the current pass.
        self.used = 0
        #: Connections waiting for their turn: each entry resumes one (it may have closed since).
        self.waiting: deque[Callable[[], None]] = deque()
        self._pass_scheduled = False

    def admit(self) -> bool:
        """Whether a handshake read may run now (it is counted). False: call `wait`."""
        if self.waiting or self.used >= HANDSHAKE_STEPS_PER_PASS:
            return False
        self.used += 1
        self._schedule_pass()
        return True

    def wait(self, resume: Callable[[], None]) -> None:
        """Queue a connection whose read was not admitted; `resume` runs it in a later pass."""
        self.waiting.append(resume)
        self._schedule_pass()

    def _schedule_pass(self) -> None:
        # call_soon from inside a pass runs at the start of the next one, before its reads.
        loop = self._loop()
        if not self._pass_scheduled and loop is not None and not loop.is_closed():
            self._pass_scheduled = True
            loop.call_soon(self._next_pass)

    def _next_pass(self) -> None:
        self._pass_scheduled = False
        self.used = 0
        waiting = self.waiting
        try:
            while waiting and self.used < HANDSHAKE_STEPS_PER_PASS:
                self.used += 1
                waiting.popleft()()
        finally:
            # Even when a resumed read raised (the loop reports it): the queue goes on, and
            # the next pass resets the budget.
            if waiting or self.used:
                self._schedule_pass()


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, HandshakePacer] = (
    weakref.WeakKeyDictionary()
)


def pacer_for(loop: asyncio.AbstractEventLoop) -> HandshakePacer:
    """The loop's pacer (one per loop: the budget is the loop's, whatever the socket)."""
    pacer = _pacers.get(loop)
    if pacer is None:
        pacer = _pacers[loop] = HandshakePacer(loop)
    return pacer
