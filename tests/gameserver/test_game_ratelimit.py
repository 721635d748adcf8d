"""Token buckets: bursts, refill, and never more than the rate allows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameserver.ratelimit import RateLimiter, TokenBucket


def test_burst_then_refill() -> None:
    bucket = TokenBucket.full(rate=2.0, capacity=3.0, now=100.0)
    assert [bucket.try_take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after(100.0) == pytest.approx(0.5)
    assert not bucket.try_take(100.25)
    assert bucket.try_take(100.5)
    assert bucket.try_take(200.0) and bucket.tokens == pytest.approx(2.0)  # capped at capacity


def test_clock_going_backwards_mints_nothing() -> None:
    bucket = TokenBucket.full(rate=1.0, capacity=1.0, now=50.0)
    assert bucket.try_take(50.0)
    assert not bucket.try_take(10.0)
    assert not bucket.try_take(50.5)
    assert bucket.try_take(51.0)


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket.full(rate=0, capacity=1, now=0)
    with pytest.raises(ValueError):
        RateLimiter(rate=1, capacity=1, max_keys=0)
    assert TokenBucket.full(1, 1, 0).retry_after(0, cost=2) == float("inf")


@given(
    rate=st.floats(0.1, 100),
    capacity=st.floats(1, 50),
    steps=st.lists(st.floats(0, 5), max_size=200),
)
def test_never_exceeds_rate(rate: float, capacity: float, steps: list[float]) -> None:
    bucket = TokenBucket.full(rate, capacity, now=0.0)
    now, granted = 0.0, 0
    for step in steps:
        now += step
        granted += bucket.try_take(now)
    assert granted <= capacity + rate * now + 1e-6


def test_limiter_keeps_one_bucket_per_key_and_forgets_old_ones() -> None:
    limiter = RateLimiter(rate=1.0, capacity=1.0, max_keys=2)
    assert limiter.try_take("a", 0.0) and not limiter.try_take("a", 0.0)
    assert limiter.try_take("b", 0.0)
    assert limiter.try_take("c", 0.0)  # evicts "a", the least recently used
    assert len(limiter) == 2
    assert limiter.try_take("a", 0.0)  # a fresh bucket again
    limiter.forget("a")
    assert len(limiter) == 1
