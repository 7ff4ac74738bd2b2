"""Per-key ingest limits: a token bucket per API key, counted in events (a batch of 500 costs 500).

Buckets live in the API process: with N API replicas a key may send N times the rate. That is the
point of a per-process limit (protect this process and the broker behind it); a tenant-wide quota
would need a shared counter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s > 0 and burst >= 1 are required")
        self.rate = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, cost: int) -> float:
        """Spend `cost` tokens of `key`'s bucket; 0.0 if allowed, else the seconds to wait before retrying."""
        now = self._clock()
        bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if cost > self.burst:
            return math.inf  # can never pass: the caller must split the batch
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate
