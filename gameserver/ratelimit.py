"""Token-bucket rate limiting for the front, one bucket per session. Pure: callers pass the clock."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """Allows bursts of up to ``capacity`` actions, refilled at ``rate`` tokens per second."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, capacity: float, now: float) -> TokenBucket:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        return cls(rate=rate, capacity=capacity, tokens=capacity, updated=now)

    def _refill(self, now: float) -> None:
        # A clock that steps backwards must not mint tokens or make the bucket negative.
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)

    def try_take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available; False means the action must be refused."""
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens will be available (0 if they are now)."""
        self._refill(now)
        if cost > self.capacity:
            return float("inf")
        return max(0.0, (cost - self.tokens) / self.rate)


class RateLimiter:
    """Buckets by key (session token), forgetting the least recently used beyond ``max_keys``
    so that a flood of distinct keys cannot exhaust memory."""

    def __init__(self, rate: float, capacity: float, max_keys: int = 100_000) -> None:
        if rate <= 0 or capacity <= 0 or max_keys <= 0:
            raise ValueError("rate, capacity and max_keys must be positive")
        self.rate = rate
        self.capacity = capacity
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def try_take(self, key: str, now: float, cost: float = 1.0) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket.full(self.rate, self.capacity, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.try_take(now, cost)

    def forget(self, key: str) -> None:
        """Drop a key's bucket, e.g. when its session ends."""
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)
