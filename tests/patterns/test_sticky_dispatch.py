"""Sticky dispatch in the Paranoid Pirate queue's WorkerPool: while requests wait, a client's go
to its home worker, a saturated queue finds each freed worker one of its own clients' requests,
the oldest request is never passed over more than STICKY_PATIENCE times; with credit to spare
the workers take turns. That no request is lost, doubled or given to a worker without credit,
sticky or not, warm or not, is test_warm_dispatch.py's hypothesis test. Homes come from
Python's hash, randomized per process: the tests pick their clients by home rather than
assume one."""

from __future__ import annotations

from engine.patterns.worker_pool import STICKY_PATIENCE, STICKY_WINDOW, WorkerPool


def _request(client: int, n: int = 0) -> list[bytes]:
    return [b"client-%d" % client, b"", b"job-%d" % n]


def _pool(workers: int, credit: int, *, sticky: bool = True) -> WorkerPool:
    pool = WorkerPool(interval=1.0, liveness=3, sticky=sticky)
    for w in range(workers):
        pool.worker_ready(b"w%d" % w, now=0.0, credit=credit)
    return pool


def _clients_by_home(pool: WorkerPool, each: int) -> dict[bytes, list[int]]:
    """``each`` client numbers homed on each of the pool's workers."""
    out: dict[bytes, list[int]] = {worker: [] for worker in pool.workers}
    client = 0
    while any(len(clients) < each for clients in out.values()):
        home = out[pool._home(_request(client))]
        if len(home) < each:
            home.append(client)
        client += 1
    return out


def test_waiting_requests_go_to_their_clients_homes() -> None:
    pool = _pool(3, credit=256)  # room for every request of its clients
    homes = _clients_by_home(pool, 4)
    for n in range(20):
        for clients in homes.values():
            for client in clients:
                pool.submit(_request(client, n))
    dispatched = pool.dispatch()
    # All but the last: a request that waits alone for a worker with credit is not backed up.
    for worker, request in dispatched[:-1]:
        assert request[0] in {_request(c)[0] for c in homes[worker]}


def test_with_credit_to_spare_the_workers_take_turns_even_for_one_client() -> None:
    pool = _pool(3, credit=8)
    taken = []
    for n in range(6):
        pool.submit(_request(7, n))
        ((worker, _),) = pool.dispatch()
        taken.append(worker)
        pool.complete(worker, now=0.1)
    assert taken == [b"w0", b"w1", b"w2", b"w0", b"w1", b"w2"]


def test_without_sticky_the_workers_take_turns() -> None:
    pool = _pool(2, credit=100, sticky=False)
    for n in range(4):
        pool.submit(_request(7, n))
    assert [worker for worker, _ in pool.dispatch()] == [b"w0", b"w1", b"w0", b"w1"]


def test_a_saturated_queue_gives_a_freed_worker_a_request_of_its_own_clients() -> None:
    pool = _pool(2, credit=1)
    homes = _clients_by_home(pool, 10)
    clients = [c for pair in zip(*homes.values(), strict=True) for c in pair]
    for n in range(3):
        for client in clients:
            pool.submit(_request(client, n))
    assert len(pool.dispatch()) == 2  # one each: every credit is spent, the rest waits
    assert len(pool.pending) == 58
    for i in range(40):
        worker = b"w%d" % (i % 2 if i % 5 else 0)  # w0 more often than w1
        pool.complete(worker, now=0.1)
        ((taken_by, request),) = pool.dispatch()
        assert taken_by == worker
        assert pool._home(request) == worker  # within STICKY_WINDOW, one of its own


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


def test_a_client_named_at_submit_is_homed_by_that_name_not_by_its_connection() -> None:
    """Clients behind one relay (or one client on two connections): the name given at
    submit picks the home, as a connection's address does otherwise."""
    pool = _pool(2, credit=256)
    # A name hashes as the address of that name would: one client homed on each worker.
    home_of = {_request(c)[0]: w for w, (c,) in _clients_by_home(pool, 1).items()}
    for n in range(10):
        for name in home_of:
            pool.submit([b"relay-1", b"", name + b"-job-%d" % n], name)
    dispatched = pool.dispatch()
    for worker, request in dispatched[:-1]:  # the last waited alone: any worker
        (name,) = [name for name in home_of if request[-1].startswith(name + b"-")]
        assert worker == home_of[name], (worker, request)
    assert pool._clients == {}  # nothing kept for requests that left the queue
