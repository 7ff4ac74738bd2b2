"""Source quality, the fake-prosperity detector: verdict counts per source (channel, campaign, store) and
hour, a decaying baseline of each source's bad rate, and the alert when an hour jumps above it. Pure:
times are passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.leads import Verdict

DIMENSIONS = ("channel", "campaign", "store")
BUCKET = timedelta(hours=1)
ALERT_REASON = "bad_rate_above_baseline"


class AlertPolicyError(ValueError):
    """An alert policy that cannot be used; the message names the key."""


def _utc(at: datetime) -> datetime:
    # Naive and aware times cannot be compared; a naive one (an old document, a test) is taken as UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def bucket_of(at: datetime) -> datetime:
    """The start of the hour `at` falls in, in UTC (a naive time is taken as UTC)."""
    return _utc(at).replace(minute=0, second=0, microsecond=0)


def sources_of(channel: str, campaign_id: str | None, store_id: str | None) -> list[tuple[str, str]]:
    """The sources a touchpoint counts for: its channel, and its campaign and store when it has them."""
    return [(d, v) for d, v in zip(DIMENSIONS, (channel, campaign_id, store_id), strict=True) if v]


@dataclass(frozen=True)
class Counts:
    valid: int = 0
    suspect: int = 0
    junk: int = 0

    @property
    def total(self) -> int:
        return self.valid + self.suspect + self.junk

    @property
    def bad(self) -> int:
        return self.suspect + self.junk

    def _rate(self, part: int) -> float:
        return part / self.total if self.total else 0.0

    @property
    def bad_rate(self) -> float:
        return self._rate(self.bad)

    @property
    def junk_rate(self) -> float:
        return self._rate(self.junk)

    @property
    def suspect_rate(self) -> float:
        return self._rate(self.suspect)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.valid + other.valid, self.suspect + other.suspect, self.junk + other.junk)

    @classmethod
    def of(cls, verdict: Verdict) -> Counts:
        return cls(**{verdict.value: 1})


@dataclass(frozen=True)
class AlertPolicy:
    min_volume: int = 20  # an hour with fewer touchpoints never alerts
    min_baseline_volume: int = 50  # less history than this: compare against default_baseline
    default_baseline: float = 0.15
    ratio: float = 2.0  # alert when the hour's bad rate is above baseline × ratio …
    margin: float = 0.10  # … and above baseline + margin: both, so small baselines do not alert on noise
    half_life_hours: float = 72.0  # the baseline forgets an hour's weight by half in this time

    def __post_init__(self) -> None:
        # Each key with what it must be, so a bad [alerts] table names the line to fix.
        checks = {
            "min_volume": (self.min_volume >= 1, "at least 1"),
            "min_baseline_volume": (self.min_baseline_volume >= 0, "at least 0"),
            "default_baseline": (0 <= self.default_baseline <= 1, "between 0 and 1"),
            "ratio": (1 <= self.ratio < math.inf, "a finite number, at least 1"),
            "margin": (0 <= self.margin <= 1, "between 0 and 1"),
            "half_life_hours": (0 < self.half_life_hours < math.inf, "a finite number above 0"),
        }
        bad = [f"{name}: {need}" for name, (ok, need) in checks.items() if not ok]  # NaN fails every check
        if bad:
            raise AlertPolicyError("; ".join(bad))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AlertPolicy:
        """The policy from an `[alerts]` TOML table: keys as the fields, the rest defaults."""
        if not isinstance(data, Mapping):
            raise AlertPolicyError("alerts: a table")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise AlertPolicyError(f"unknown alert keys: {', '.join(sorted(map(str, unknown)))}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            whole = key in ("min_volume", "min_baseline_volume")
            # bool is an int in Python; `ratio = true` is a typo, not 1.
            if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
                raise AlertPolicyError(f"{key}: {'a whole number' if whole else 'a number'}")
            kwargs[key] = value if whole else float(value)
        return cls(**kwargs)


@dataclass(frozen=True)
class Baseline:
    rate: float | None = None  # None: no history yet
    volume: float = 0.0  # the decayed number of touchpoints behind `rate`
    through: datetime | None = None  # the last hour folded in

    def fold(self, bucket: datetime, counts: Counts, policy: AlertPolicy) -> Baseline:
        """Fold one closed hour in. An hour at or before `through` is folded already: nothing changes."""
        bucket = _utc(bucket)
        if self.through is not None and bucket <= _utc(self.through):
            return self
        hours = (bucket - _utc(self.through)).total_seconds() / 3600 if self.through is not None else 0.0
        # Time forgets even across an empty hour, or a quiet source would keep its old weight forever.
        kept = self.volume * 0.5 ** (hours / policy.half_life_hours)
        if counts.total == 0:
            return Baseline(self.rate, kept, bucket)
        volume = kept + counts.total
        rate = ((self.rate or 0.0) * kept + counts.bad) / volume
        return Baseline(min(1.0, max(0.0, rate)), volume, bucket)

    def own_rate(self, policy: AlertPolicy) -> float | None:
        """The source's own rate once it has enough history behind it; None before."""
        return self.rate if self.rate is not None and self.volume >= policy.min_baseline_volume else None

    def reference(self, policy: AlertPolicy) -> float:
        """The rate an hour is compared against: the source's own, or the default while it has none."""
        own = self.own_rate(policy)
        return policy.default_baseline if own is None else own


@dataclass(frozen=True)
class Alert:
    dimension: str
    value: str
    bucket: datetime
    counts: Counts
    baseline: float
    bad_rate: float
    reason: str = ALERT_REASON

    @property
    def alert_id(self) -> str:
        """One alert per source and hour."""
        return f"{self.dimension}\x1f{self.value}\x1f{self.bucket.isoformat()}"


def check(dimension: str, value: str, bucket: datetime, counts: Counts, baseline: Baseline,
          policy: AlertPolicy) -> Alert | None:
    """The alert an hour's counts raise against the source's baseline, if any."""
    if counts.total < policy.min_volume:
        return None
    reference = baseline.reference(policy)
    rate = counts.bad_rate
    if rate > reference * policy.ratio and rate > reference + policy.margin:
        # The hour start, in UTC, makes the id: every count in the hour re-checks, one alert results.
        return Alert(dimension, value, bucket_of(bucket), counts, reference, rate)
    return None


@dataclass(frozen=True)
class SourceReport:
    """One row of GET /v1/ops/sources."""

    dimension: str
    value: str
    counts: Counts
    baseline: float | None  # None: too little history, the source is compared against the default
    alerting: bool


def report(rows: Iterable[tuple[str, str, datetime, Counts]], baselines: Mapping[tuple[str, str], Baseline], *,
           since: datetime, until: datetime, policy: AlertPolicy) -> list[SourceReport]:
    """Each source's counts over the hours since <= bucket < until, its baseline, and whether its newest hour
    alerts; worst bad rate first, then the busiest."""
    lower, upper = _utc(since), _utc(until)
    totals: dict[tuple[str, str], Counts] = {}
    newest: dict[tuple[str, str], tuple[datetime, Counts]] = {}
    for dimension, value, bucket, counts in rows:
        bucket = _utc(bucket)
        if not lower <= bucket < upper:
            continue
        key = (dimension, value)
        totals[key] = totals.get(key, Counts()) + counts
        if key not in newest or bucket > newest[key][0]:
            newest[key] = (bucket, counts)
    out = []
    for (dimension, value), counts in totals.items():
        baseline = baselines.get((dimension, value), Baseline())
        bucket, last = newest[(dimension, value)]
        alerting = check(dimension, value, bucket, last, baseline, policy) is not None
        # The source's own rate only once alerts use it: a rate from a handful of touchpoints is noise.
        out.append(SourceReport(dimension, value, counts, baseline.own_rate(policy), alerting))
    return sorted(out, key=lambda r: (-r.counts.bad_rate, -r.counts.total, r.dimension, r.value))
