"""Sticky dispatch in the Paranoid Pirate queue's WorkerPool: a client's requests go to its
home worker whenever it has credit, a saturated queue still finds each freed worker one of its
own clients' requests, the oldest request is never passed over more than STICKY_PATIENCE times,
and no request is lost, doubled or given to a worker without credit (hypothesis)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.patterns.worker_pool import STICKY_PATIENCE, STICKY_WINDOW, WorkerPool


def _request(client: int, n: int = 0) -> list[bytes]:
    return [b"client-%d" % client, b"", b"job-%d" % n]


def _pool(workers: int, credit: int, *, sticky: bool = True) -> WorkerPool:
    pool = WorkerPool(interval=1.0, liveness=3, sticky=sticky)
    for w in range(workers):
        pool.worker_ready(b"w%d" % w, now=0.0, credit=credit)
    return pool


def test_a_clients_requests_all_go_to_one_worker_while_it_has_credit() -> None:
    pool = _pool(3, credit=256)  # room for every request of its clients
    for n in range(20):
        for client in range(10):
            pool.submit(_request(client, n))
    given_to: dict[bytes, set[bytes]] = {}
    for worker, request in pool.dispatch():
        given_to.setdefault(request[0], set()).add(worker)
    assert len(given_to) == 10 and all(len(workers) == 1 for workers in given_to.values())
    assert len({next(iter(w)) for w in given_to.values()}) > 1  # the clients spread out


def test_without_sticky_the_workers_take_turns() -> None:
    pool = _pool(2, credit=100, sticky=False)
    for n in range(4):
        pool.submit(_request(7, n))
    assert [worker for worker, _ in pool.dispatch()] == [b"w0", b"w1", b"w0", b"w1"]


def test_a_saturated_queue_gives_a_freed_worker_a_request_of_its_own_clients() -> None:
    pool = _pool(2, credit=1)
    for n in range(3):
        for client in range(20):
            pool.submit(_request(client, n))
    held = dict(pool.dispatch())  # one each: every credit is spent, the rest waits
    assert len(held) == 2 and len(pool.pending) == 58
    for _ in range(30):
        worker = next(iter(held))
        pool.complete(worker, now=0.1)
        ((taken_by, request),) = pool.dispatch()
        assert taken_by == worker
        assert pool._home(request) == worker  # within STICKY_WINDOW, one of its own
        held = {worker: request, **{w: r for w, r in held.items() if w != worker}}


def test_the_oldest_request_is_passed_over_at_most_patience_times() -> None:
    pool = _pool(2, credit=1)
    clients = [c for c in range(200) if pool._home(_request(c)) == b"w0"]
    strangers = [c for c in range(200) if pool._home(_request(c)) == b"w1"]
    pool.submit(_request(clients[0]))
    pool.submit(_request(clients[1]))
    assert [w for w, _ in pool.dispatch()] == [b"w0", b"w1"]  # its home busy, w1 takes the 2nd
    oldest = _request(clients[2])
    pool.submit(oldest)  # its home, w0, stays busy from here on
    for n in range(STICKY_PATIENCE + STICKY_WINDOW):
        pool.submit(_request(strangers[n % len(strangers)], n))
    passed = 0
    while True:
        pool.complete(b"w1", now=0.1)
        ((_, request),) = pool.dispatch()
        if request is oldest:
            break
        passed += 1
    assert passed == STICKY_PATIENCE


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("submit"), st.integers(0, 12)),
            st.tuples(st.just("reply"), st.integers(0, 3)),
            st.tuples(st.just("ready"), st.integers(0, 3)),
            st.tuples(st.just("die"), st.integers(0, 3)),
        ),
        max_size=120,
    ),
    credit=st.integers(1, 4),
)
def test_sticky_dispatch_loses_nothing_doubles_nothing_and_keeps_credit(
    steps: list[tuple[str, int]], credit: int
) -> None:
    pool = WorkerPool(interval=1.0, liveness=3, sticky=True)
    submitted: Counter[bytes] = Counter()
    answered: Counter[bytes] = Counter()
    n = 0
    for action, arg in steps:
        worker = b"w%d" % arg
        if action == "submit":
            n += 1
            request = _request(arg, n)
            pool.submit(request)
            submitted[request[2]] += 1
        elif action == "ready":
            pool.worker_ready(worker, now=0.0, credit=credit)
        elif action == "die":
            pool.remove(worker)
        elif (done := pool.complete(worker, now=0.0)) is not None:
            answered[done[2]] += 1
        pool.dispatch()
        for record in pool.workers.values():
            assert len(record.held) <= record.credit
        if pool.idle:  # a ready worker with credit leaves nothing waiting
            assert not pool.pending
    held = Counter(r[2] for record in pool.workers.values() for r in record.held)
    waiting = Counter(r[2] for r in pool.pending)
    assert answered + held + waiting == submitted
