"""Running one job in a worker.

A job body (after the Paranoid Pirate envelope) is ``[JOB_REQUEST, request]`` for a client's
request (``[JOB_LOGIN_EXISTING, login]`` for a login that may not register), or ``[JOB_TICK]``
for the world clock. A worker answers ``[reply, marks, *pubs]``:
the reply for the client (empty for a tick), the public seq marks of its events (see
:func:`gameserver.broadcast.marks`), and one frame per event to publish (see
:mod:`gameserver.broadcast`). The frames are defined in :mod:`gameserver.protocol`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from .accounts import Hashing
from .broadcast import marks, publication_frames, settle_frames
from .commands import CommandError
from .events import Outcome
from .protocol import (
    JOB_LOGIN_EXISTING,
    JOB_REQUEST,
    JOB_TICK,
    NO_MARKS,
    NO_REPLY,
    ActionRequest,
    CatchupRequest,
    ErrorReply,
    LoginRequest,
    ProtocolError,
    Request,
    decode_request,
    encode,
    encode_marks,
)
from .service import GameService
from .store.base import Batch, StoreError

log = logging.getLogger(__name__)

#: Told of each handled request: the request, its outcome and the seconds it took (metrics, logs).
Observer = Callable[[Request, Outcome, float], None]
#: Runs a login's password hashing off the worker's loop (gameserver.worker.HashingProcess).
Offload = Callable[[Callable[[], object]], Awaitable[object]]
#: A job's answer: its frames, or (a login whose hashing is offloaded) their future.
Answer = list[bytes] | Awaitable[list[bytes]]


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
    parsed = _parse(job)
    if isinstance(parsed, list):
        return parsed
    return _final(_run(service, parsed, cpu_burn, observer))


def run_jobs(
    service: GameService,
    jobs: list[list[bytes]],
    *,
    cpu_burn: int = 0,
    observer: Observer | None = None,
    offload: Offload | None = None,
) -> list[Answer]:
    """Handle the jobs a worker holds at once, answers in the same order; never raises.

    All but logins run in one store batch (one commit), and no answer leaves before that
    commit: a worker killed mid-batch has answered nothing, and the front re-sends all it held.
    Logins run on their own: their password hashing must not hold the store's lock. With
    ``offload``, a login's answer is a coroutine (see :func:`run_login`), else it runs first.
    """
    parsed = [_parse(job) for job in jobs]
    answers: list[Answer | None] = [None] * len(jobs)
    batched = []
    for i, item in enumerate(parsed):
        if isinstance(item, list):
            answers[i] = item
        elif isinstance(item, LoginRequest):
            if offload is None:
                answers[i] = _final(_run(service, item, cpu_burn, observer))
            else:
                answers[i] = run_login(service, item, offload, observer)
        else:
            batched.append(i)
    # Read-only actions first: before the batch's first write they run in plain read
    # transactions, without holding the write lock other workers wait for.
    batched.sort(key=lambda i: not _reads_only(service, parsed[i]))
    if cpu_burn:  # the heavy logic comes before the batch: it must not hold the store's lock
        for i in batched:
            if isinstance(parsed[i], ActionRequest):
                burn(cpu_burn)
    # Observed once its answer is final: a job the store sent back runs again.
    observed: dict[int, tuple[Request, Outcome, float]] = {}

    def observe(i: int) -> Observer | None:
        if observer is None:
            return None
        return lambda request, outcome, took: observed.__setitem__(i, (request, outcome, took))

    # Jobs whose reply waits for their batch's end (a catch-up's log read, in its round trip).
    waiting: dict[int, Outcome] = {}

    def run(i: int) -> None:
        item = parsed[i]
        assert not isinstance(item, list)
        answer = _run(service, item, 0, observe(i))
        if isinstance(answer, Outcome):
            waiting[i] = answer
        else:
            waiting.pop(i, None)
            answers[i] = answer

    def settle(i: int, assigned: dict[int, int]) -> None:
        """Job ``i``'s answer once it stands, with the seqs its commit gave."""
        if i in waiting:
            outcome = waiting.pop(i).settled()
            answers[i] = _frames(outcome)
            if i in observed:
                request, _, took = observed[i]
                observed[i] = (request, outcome, took)
        frames = answers[i]
        if isinstance(frames, list):
            answers[i] = settle_frames(frames, assigned)

    try:
        todo = batched
        batch: Batch | None = None
        for _ in range(BATCH_ROUNDS):
            with service.store.batch(redo=batch) as batch:
                for i in todo:
                    with batch.running(i):
                        run(i)
            # Jobs whose transactions met data that had changed (another worker's commit):
            # they wrote nothing, and run again on the fresh data their refusal brought.
            # The others' answers get the seqs their commit gave (placeholders until now),
            # and those that waited for the batch's end (a catch-up's log) their reply.
            for i in todo:
                if i not in batch.redo:
                    settle(i, batch.assigned)
            todo = [i for i in todo if i in batch.redo]
            if not todo:
                break
        for i in todo:  # still colliding: each by itself, retried until it gets through
            run(i)
            settle(i, {})  # committed by itself: its seqs are final
    except StoreError:
        log.exception("a batch of %d job(s) failed to commit; they will be retried", len(batched))
        observed.clear()
        unavailable = [encode(ErrorReply(code="unavailable", message=BATCH_LOST)), NO_MARKS]
        for i in batched:
            answers[i] = [NO_REPLY, NO_MARKS] if parsed[i] is None else unavailable
    if observer is not None:
        for request, outcome, took in observed.values():
            observer(request, outcome, took)
    return [answer for answer in answers if answer is not None]


#: Batches a worker's jobs get before those still refused run one by one: a refusal brings
#: the fresh data, so a second batch collides only with a commit made in between.
BATCH_ROUNDS = 3
BATCH_LOST = "Storage failed; please retry."


async def run_login(
    service: GameService,
    request: LoginRequest,
    offload: Offload,
    observer: Observer | None = None,
) -> list[bytes]:
    """A login job whose password hashing runs wherever ``offload`` puts it, while this
    thread (the worker's loop) goes on with play; its store transactions stay here."""
    started = time.perf_counter()
    steps = service.login_steps(request, may_register=not isinstance(request, _ExistingOnly))
    step = service.advance(request, steps, None)
    while isinstance(step, Hashing):
        try:
            result = await offload(step.work)
        except Exception:
            log.exception("password hashing failed for a login")
            steps.close()
            step = Outcome(ErrorReply(code="internal", message="Something went wrong."))
            break
        step = service.advance(request, steps, result)
    if observer is not None:
        observer(request, step, time.perf_counter() - started)
    return _frames(step)


def _reads_only(service: GameService, item: object) -> bool:
    if isinstance(item, CatchupRequest):
        return True  # catchup.py only reads
    if not isinstance(item, ActionRequest):
        return False
    try:
        return service.commands.resolve(item.text).read_only
    except CommandError:
        return False


def _parse(job: list[bytes]) -> Request | list[bytes] | None:
    """The request of a job, None for a tick, or the final answer to a job that is no good.
    A login that may not register (the front's budget is spent, admission.py) comes back as a
    :class:`_ExistingOnly`."""
    if job == [JOB_TICK]:
        return None
    if len(job) != 2 or job[0] not in (JOB_REQUEST, JOB_LOGIN_EXISTING):
        log.warning("dropped a malformed job (%d frames)", len(job))
        reply = ErrorReply(code="internal", message="The server sent a malformed job.")
        return [encode(reply), NO_MARKS]
    try:
        request = decode_request(job[1])
    except ProtocolError as exc:
        return [encode(exc.to_reply()), NO_MARKS]
    if job[0] == JOB_LOGIN_EXISTING and isinstance(request, LoginRequest):
        return _ExistingOnly.model_construct(**dict(request))
    return request


class _ExistingOnly(LoginRequest):
    """A login from a login-only job: an unknown name is refused, not registered."""


def _run(
    service: GameService,
    request: Request | None,
    cpu_burn: int,
    observer: Observer | None = None,
) -> list[bytes] | Outcome:
    """The job's frames, or its outcome if that waits for the batch's end
    (``Outcome.waits_for_batch``): its frames come from :meth:`Outcome.settled` then."""
    if request is None:
        try:
            events = service.tick()
        except StoreError:
            log.exception("world tick failed; the next one will catch up")
            events = []
        return [NO_REPLY, NO_MARKS, *publication_frames(events)]
    started = time.perf_counter()
    if cpu_burn and isinstance(request, ActionRequest):
        burn(cpu_burn)  # before the store transaction, as real game logic would compute
    # A login-only job: the front's registration budget is spent (admission.py).
    outcome = service.handle(request, may_register=not isinstance(request, _ExistingOnly))
    if observer is not None:
        observer(request, outcome, time.perf_counter() - started)
    return outcome if outcome.waits_for_batch else _frames(outcome)


def _final(answer: list[bytes] | Outcome) -> list[bytes]:
    """The frames of a job run outside any batch (where no outcome waits)."""
    return answer if isinstance(answer, list) else _frames(answer.settled())


def _frames(outcome: Outcome) -> list[bytes]:
    return [
        outcome.reply_bytes(),
        encode_marks({**outcome.heads, **marks(outcome.events)}),
        *publication_frames(outcome.events),
    ]
