"""Replacement candidates (置换 / 复购): an owner whose purchase has aged past its cycle and who keeps
coming back for service. Pure: `now` is passed in.

Cars: the purchase is at least 4 years old and the owner made at least 2 service visits in the last
12 months. Health products: the product's usage cycle (days) has elapsed since the purchase; no
service visits are required by default.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.leads import Stage
from services.leads.domain.stages import LifecycleState


class ReplacementPolicyError(ValueError):
    pass


@dataclass(frozen=True)
class ReplacementPolicy:
    purchase_age: timedelta = timedelta(days=4 * 365 + 1)  # four years, one of them a leap year
    cycle_days_by_product: Mapping[str, int] = field(default_factory=dict)  # overrides purchase_age per product
    min_service_visits: int = 2  # 0: no service visits required
    service_window_months: int = 12
    skip_unsubscribed: bool = True  # replacement outreach is marketing: not to people who opted out

    def __post_init__(self) -> None:
        if self.purchase_age <= timedelta(0):
            raise ReplacementPolicyError("purchase_age must be positive")
        bad = sorted(p for p, days in self.cycle_days_by_product.items()
                     if not isinstance(days, int) or isinstance(days, bool) or days < 1)
        if bad:
            raise ReplacementPolicyError(f"usage cycles must be whole days >= 1; not for {', '.join(bad)}")
        if self.min_service_visits < 0:
            raise ReplacementPolicyError("min_service_visits must be >= 0")
        if self.service_window_months < 1:
            raise ReplacementPolicyError("service_window_months must be >= 1")

    def cycle_of(self, product: str | None) -> timedelta:
        days = self.cycle_days_by_product.get(product) if product else None
        return timedelta(days=days) if days else self.purchase_age


CAR_REPLACEMENT = ReplacementPolicy()
HEALTH_REPLACEMENT = ReplacementPolicy(
    purchase_age=timedelta(days=90),
    cycle_days_by_product={
        "益生菌": 30, "鱼油": 60, "蛋白粉": 30, "胶原蛋白": 30, "叶黄素": 60, "辅酶Q10": 60, "钙片": 60, "维生素C": 60,
    },
    min_service_visits=0,
)

# Reason codes.
CANDIDATE = "candidate"
NOT_AN_OWNER = "not_an_owner"  # never bought, or no purchase date known
LOST = "lost"
UNSUBSCRIBED = "unsubscribed"
PURCHASE_TOO_RECENT = "purchase_too_recent"
TOO_FEW_SERVICE_VISITS = "too_few_service_visits"


@dataclass(frozen=True)
class Candidacy:
    """Whether a person is a replacement candidate, and why. Truthy exactly when a candidate."""

    candidate: bool
    reason: str
    purchase_age: timedelta | None = None
    cycle: timedelta | None = None
    recent_service_visits: int = 0

    def __bool__(self) -> bool:
        return self.candidate


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day if it is shorter)."""
    total = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def is_replacement_candidate(state: LifecycleState, policy: ReplacementPolicy, now: datetime) -> Candidacy:
    """A candidate: an owner (customer or loyal, not lost) whose purchase is at least its cycle old and who made
    at least `min_service_visits` service visits in the last `service_window_months` (both bounds inclusive)."""
    if state.stage is Stage.LOST:
        return Candidacy(False, LOST)
    if state.purchased_at is None or state.main_stage not in (Stage.CUSTOMER, Stage.LOYAL):
        return Candidacy(False, NOT_AN_OWNER)
    if policy.skip_unsubscribed and state.unsubscribed:
        return Candidacy(False, UNSUBSCRIBED)
    age = now - state.purchased_at
    cycle = policy.cycle_of(state.purchased_product)
    since = months_before(now, policy.service_window_months)
    visits = sum(1 for v in state.service_visits if since <= v <= now)
    if age < cycle:
        return Candidacy(False, PURCHASE_TOO_RECENT, age, cycle, visits)
    if visits < policy.min_service_visits:
        return Candidacy(False, TOO_FEW_SERVICE_VISITS, age, cycle, visits)
    return Candidacy(True, CANDIDATE, age, cycle, visits)
