"""Warm dispatch in the Paranoid Pirate queue's WorkerPool: requests that arrive one at a time go
to the worker that finished last, a request that overlaps another goes to a worker holding
nothing, workers holding some take turns, a worker just added (or back with a fresh READY)
gets work at once; and no request is lost, doubled or given past a worker's credit, nor to a
busy worker while another holds nothing (hypothesis, with sticky dispatch on and off, and
without warm dispatch too)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.patterns.worker_pool import WorkerPool


def _request(n: int) -> list[bytes]:
    return [b"client-%d" % (n % 7), b"", b"job-%d" % n]


def _pool(workers: int, credit: int = 8) -> WorkerPool:
    pool = WorkerPool(interval=1.0, liveness=3, warm=True)
    for w in range(workers):
        pool.worker_ready(b"w%d" % w, now=0.0, credit=credit)
    return pool


def _one_at_a_time(pool: WorkerPool, count: int, start: int = 0) -> list[bytes]:
    """Each request answered before the next arrives; the workers that took them."""
    taken = []
    for n in range(start, start + count):
        pool.submit(_request(n))
        ((worker, request),) = pool.dispatch()
        assert pool.complete(worker, now=0.1) == request
        taken.append(worker)
    return taken


def test_requests_one_at_a_time_stay_with_the_worker_that_finished_last() -> None:
    pool = _pool(3)
    # Each worker's first request comes at once (it has never had one), then the last stays hot.
    assert _one_at_a_time(pool, 8) == [b"w0", b"w1", b"w2"] + [b"w2"] * 5


def test_without_warm_the_same_requests_take_turns() -> None:
    pool = WorkerPool(interval=1.0, liveness=3)
    for w in range(3):
        pool.worker_ready(b"w%d" % w, now=0.0, credit=8)
    assert _one_at_a_time(pool, 6) == [b"w0", b"w1", b"w2"] * 2


def test_an_overlapping_request_goes_to_a_worker_holding_nothing() -> None:
    pool = _pool(3)
    _one_at_a_time(pool, 3)  # w2 finished last, w1 before it
    pool.submit(_request(10))
    pool.submit(_request(11))
    pool.submit(_request(12))
    assert [worker for worker, _ in pool.dispatch()] == [b"w2", b"w1", b"w0"]
    # Every worker holds one now: they take turns, longest waiting first.
    for n in range(13, 16):
        pool.submit(_request(n))
    assert [worker for worker, _ in pool.dispatch()] == [b"w2", b"w1", b"w0"]


def test_a_worker_that_joins_or_comes_back_gets_the_next_request() -> None:
    pool = _pool(2)
    assert _one_at_a_time(pool, 4) == [b"w0", b"w1", b"w1", b"w1"]
    pool.worker_ready(b"w9", now=0.2, credit=8)
    assert _one_at_a_time(pool, 3, start=4) == [b"w9", b"w9", b"w9"]
    # A fresh READY (a restarted worker) is not warm: it goes behind those that finished.
    pool.worker_ready(b"w9", now=0.3, credit=8)
    pool.submit(_request(20))
    pool.submit(_request(21))
    assert [worker for worker, _ in pool.dispatch()] == [b"w1", b"w0"]
    pool.remove(b"w1")
    pool.remove(b"w0")  # what they held goes to the one worker left
    assert [worker for worker, _ in pool.dispatch()] == [b"w9", b"w9"]


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("submit"), st.integers(0, 12)),
            st.tuples(st.just("reply"), st.integers(0, 3)),
            st.tuples(st.just("ready"), st.integers(0, 3)),
            st.tuples(st.just("die"), st.integers(0, 3)),
            st.tuples(st.just("expire"), st.integers(0, 3)),
        ),
        max_size=120,
    ),
    credit=st.integers(1, 4),
    sticky=st.booleans(),
    warm=st.booleans(),
)
def test_dispatch_loses_nothing_keeps_credit_and_warm_never_queues_behind_a_busy_worker(
    steps: list[tuple[str, int]], credit: int, sticky: bool, warm: bool
) -> None:
    pool = WorkerPool(interval=1.0, liveness=3, warm=warm, sticky=sticky)
    submitted: Counter[bytes] = Counter()
    answered: Counter[bytes] = Counter()
    now = 0.0
    for n, (action, arg) in enumerate(steps):
        worker = b"w%d" % arg
        if action == "submit":
            request = _request(n)
            pool.submit(request)
            submitted[request[2]] += 1
        elif action == "ready":
            pool.worker_ready(worker, now=now, credit=credit)
        elif action == "die":
            pool.remove(worker)
        elif action == "expire":
            now += 10.0  # every worker expires, but those that then speak up again
            pool.worker_ready(worker, now=now, credit=credit)
            pool.purge(now - 1.0)
        elif (done := pool.complete(worker, now=now)) is not None:
            answered[done[2]] += 1
        before = {w: len(record.held) for w, record in pool.workers.items()}
        for taken_by, _ in pool.dispatch():
            if warm and not sticky:  # (sticky picks a client's home while requests wait)
                # Taken by a worker holding nothing whenever one was.
                assert before[taken_by] == 0 or min(before.values()) > 0
            before[taken_by] += 1
        for record in pool.workers.values():
            assert len(record.held) <= record.credit
        if pool.idle:  # a ready worker with credit leaves nothing waiting
            assert not pool.pending
    held = Counter(r[2] for record in pool.workers.values() for r in record.held)
    waiting = Counter(r[2] for r in pool.pending)
    assert answered + held + waiting == submitted
