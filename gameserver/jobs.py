"""Running one job in a worker.

A job body (after the Paranoid Pirate envelope) is ``[JOB_REQUEST, request]`` for a client's
request, or ``[JOB_TICK]`` for the world clock. A worker answers ``[reply, marks, *pubs]``:
the reply for the client (empty for a tick), the public seq marks of its events (see
:func:`gameserver.broadcast.marks`), and flat ``wire_topic, payload`` pairs to publish. The
frames are defined in :mod:`gameserver.protocol`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .broadcast import marks, publication_frames
from .events import Outcome
from .protocol import (
    JOB_REQUEST,
    JOB_TICK,
    NO_MARKS,
    NO_REPLY,
    ActionRequest,
    ErrorReply,
    ProtocolError,
    Request,
    decode_request,
    encode,
    encode_marks,
)
from .service import GameService
from .store.base import StoreError

log = logging.getLogger(__name__)

#: Told of each handled request: the request, its outcome and the seconds it took (metrics, logs).
Observer = Callable[[Request, Outcome, float], None]


def burn(iterations: int) -> int:
    """Deterministic pure-Python CPU work standing in for heavy game logic (AI, pathfinding).

    A linear congruential generator: no allocation, no I/O, the same cost on every call.
    """
    x = 1
    for _ in range(iterations):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def run_job(
    service: GameService,
    job: list[bytes],
    *,
    cpu_burn: int = 0,
    observer: Observer | None = None,
) -> list[bytes]:
    """Handle one job; never raises (a bad job gets an error reply, a failed tick no events)."""
    if job == [JOB_TICK]:
        try:
            events = service.tick()
        except StoreError:
            log.exception("world tick failed; the next one will catch up")
            events = []
        return [NO_REPLY, NO_MARKS, *publication_frames(events)]
    if len(job) != 2 or job[0] != JOB_REQUEST:
        log.warning("dropped a malformed job (%d frames)", len(job))
        reply = ErrorReply(code="internal", message="The server sent a malformed job.")
        return [encode(reply), NO_MARKS]
    try:
        request = decode_request(job[1])
    except ProtocolError as exc:
        return [encode(exc.to_reply()), NO_MARKS]
    started = time.perf_counter()
    if cpu_burn and isinstance(request, ActionRequest):
        burn(cpu_burn)  # before the store transaction, as real game logic would compute
    outcome = service.handle(request)
    if observer is not None:
        observer(request, outcome, time.perf_counter() - started)
    return [
        outcome.reply_bytes(),
        encode_marks(marks(outcome.events)),
        *publication_frames(outcome.events),
    ]
