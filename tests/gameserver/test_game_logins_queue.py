"""The front's login queue (gameserver.logins): a few logins with the workers at a time, the
rest waiting in a bounded queue, "busy" beyond it."""

from __future__ import annotations

from gameserver.logins import STALE_S, LoginQueue, slot_count


def env(n: int) -> list[bytes]:
    return [b"client-%d" % n, b"", b""]


def test_each_worker_takes_one_login_at_a_time() -> None:
    assert [slot_count(w) for w in (0, 1, 2, 3, 4)] == [1, 1, 2, 3, 4]


def test_logins_go_a_few_at_a_time_and_each_answer_frees_a_slot() -> None:
    queue = LoginQueue(max_wait=100.0)
    for n in range(5):
        assert queue.offer(env(n), [b"job", b"%d" % n], workers=2)
    first = queue.admit(workers=2, now=0.0)
    assert [msg[0] for msg in first] == [b"client-0", b"client-1"]  # a slot per worker
    assert queue.admit(workers=2, now=0.1) == []
    assert queue.answered(env(1), now=0.2)
    assert not queue.answered(env(1), now=0.2)  # once only
    assert not queue.answered(env(9), now=0.2)  # not a login's
    assert [msg[0] for msg in queue.admit(workers=2, now=0.3)] == [b"client-2"]


def test_a_resent_login_is_not_queued_twice() -> None:
    queue = LoginQueue(max_wait=100.0)
    assert queue.offer(env(1), [b"job"], workers=1)
    assert queue.offer(env(1), [b"job"], workers=1)
    assert len(queue.waiting) == 1
    assert queue.holds(env(1)) and not queue.holds(env(2))  # the front drops such resends
    queue.admit(workers=1, now=0.0)
    assert queue.offer(env(1), [b"job"], workers=1)  # in flight: dropped as well
    assert not queue.waiting
    assert queue.holds(env(1))
    queue.answered(env(1), now=0.1)
    assert not queue.holds(env(1))


def test_busy_when_the_wait_would_be_too_long_or_the_queue_full() -> None:
    queue = LoginQueue(max_wait=1.0, average_s=0.1)
    accepted = [queue.offer(env(n), [b"job"], workers=1) for n in range(20)]
    assert accepted == [True] * 10 + [False] * 10  # 10 x 0.1 s on one slot fills a second
    assert queue.refused == 10
    capped = LoginQueue(max_wait=1e9, max_waiting=3)
    assert [capped.offer(env(n), [b"job"], workers=2) for n in range(4)] == [True] * 3 + [False]


def test_measured_login_times_steer_the_bound() -> None:
    queue = LoginQueue(max_wait=1.0, average_s=0.01)
    queue.offer(env(0), [b"job"], workers=1)
    queue.admit(workers=1, now=0.0)
    queue.answered(env(0), now=2.0)  # that one took 2 s
    assert 0.3 < queue.average_s < 0.5  # moved a fifth of the way towards 2 s
    accepted = [queue.offer(env(n), [b"job"], workers=1) for n in range(1, 5)]
    assert accepted == [True, True, False, False]  # a third would wait over a second


def test_a_lost_login_gives_its_slot_back_and_shutdown_empties_the_queue() -> None:
    queue = LoginQueue(max_wait=100.0)
    queue.offer(env(0), [b"job"], workers=1)
    queue.offer(env(1), [b"job"], workers=1)
    assert len(queue.admit(workers=1, now=0.0)) == 1
    assert queue.admit(workers=1, now=1.0) == []
    assert len(queue.admit(workers=1, now=STALE_S + 1)) == 1
    queue.offer(env(2), [b"job"], workers=1)
    assert queue.drop_waiting() == [env(2)]
    assert not queue.waiting and not queue.waiting_keys
