"""Per-key ingest limits: the token bucket, and the 429 the API answers with."""

from __future__ import annotations

import math

import pytest

from services.gateway.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_rules():
    clock = Clock()
    limiter = RateLimiter(rate_per_s=10, burst=100, clock=clock)
    assert limiter.take("k", 100) == 0.0
    assert limiter.take("k", 5) == pytest.approx(0.5)  # empty: five tokens take half a second
    clock.now = 0.5
    assert limiter.take("k", 5) == 0.0
    assert limiter.take("other", 100) == 0.0  # every key has its own bucket


def test_tokens_never_exceed_the_burst_and_oversized_batches_never_pass():
    clock = Clock()
    limiter = RateLimiter(rate_per_s=10, burst=100, clock=clock)
    clock.now = 3600
    assert limiter.take("k", 100) == 0.0
    assert limiter.take("k", 1) > 0
    assert math.isinf(limiter.take("k", 101))


@pytest.mark.parametrize("rate, burst", [(0, 10), (-1, 10), (1, 0)])
def test_nonsense_limits_are_refused(rate, burst):
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)
