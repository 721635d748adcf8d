"""The job format between the front and its workers, and running one job in a worker.

A job body (after the Paranoid Pirate envelope) is ``[KIND_REQUEST, request]`` for a client's
request, or ``[KIND_TICK]`` for the world clock. A worker answers ``[reply, marks, *pubs]``:
the reply for the client (empty for a tick), the public seq marks of its events (see
:func:`gameserver.broadcast.marks`), and flat ``wire_topic, payload`` pairs to publish.
"""

from __future__ import annotations

import logging

import orjson

from .broadcast import marks, publication_frames
from .protocol import ActionRequest, ErrorReply, ProtocolError, decode_request, encode
from .service import GameService
from .store.base import StoreError

log = logging.getLogger(__name__)

KIND_REQUEST = b"R"
KIND_TICK = b"T"
NO_REPLY = b""
NO_MARKS = b"{}"


def request_job(body: bytes) -> list[bytes]:
    return [KIND_REQUEST, body]


def tick_job() -> list[bytes]:
    return [KIND_TICK]


def burn(iterations: int) -> int:
    """Deterministic pure-Python CPU work standing in for heavy game logic (AI, pathfinding).

    A linear congruential generator: no allocation, no I/O, the same cost on every call.
    """
    x = 1
    for _ in range(iterations):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def run_job(service: GameService, job: list[bytes], *, cpu_burn: int = 0) -> list[bytes]:
    """Handle one job; never raises (a bad job gets an error reply, a failed tick no events)."""
    if job == [KIND_TICK]:
        try:
            events = service.tick()
        except StoreError:
            log.exception("world tick failed; the next one will catch up")
            events = []
        return [NO_REPLY, NO_MARKS, *publication_frames(events)]
    if len(job) != 2 or job[0] != KIND_REQUEST:
        log.warning("dropped a malformed job (%d frames)", len(job))
        reply = ErrorReply(code="internal", message="The server sent a malformed job.")
        return [encode(reply), NO_MARKS]
    try:
        request = decode_request(job[1])
    except ProtocolError as exc:
        return [encode(exc.to_reply()), NO_MARKS]
    if cpu_burn and isinstance(request, ActionRequest):
        burn(cpu_burn)  # before the store transaction, as real game logic would compute
    outcome = service.handle(request)
    return [
        outcome.reply_bytes(),
        orjson.dumps(marks(outcome.events)),
        *publication_frames(outcome.events),
    ]


def split_result(frames: list[bytes]) -> tuple[list[bytes], list[bytes]] | None:
    """``(reply frames for the client, publication frames)`` of a worker's answer, or None if
    it is malformed. A one-frame answer (the front's own "busy") has no publications."""
    if len(frames) == 1:
        return frames, []
    if len(frames) < 2 or len(frames) % 2:
        return None
    return frames[:2], frames[2:]
