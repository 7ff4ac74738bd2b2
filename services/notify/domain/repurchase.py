"""Repurchase reminders for products that run out (consultative health products): a purchase of a
product with a usage cycle makes a reminder due `remind_days_before` the supply ends, and the reminder
becomes a follow-up task for the customer's consultant. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.notify.domain.keys import check_keys
from schemas.touchpoints import EventType

PURCHASES = frozenset({EventType.PURCHASE_COMPLETED, EventType.ORDER_PLACED})
REASON = "repurchase_due"


class RepurchaseError(ValueError):
    pass


@dataclass(frozen=True)
class RepurchasePolicy:
    cycles: Mapping[str, float] = field(default_factory=dict)  # product (as cleaned) -> days one purchase lasts
    remind_days_before: float = 5.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RepurchasePolicy:
        check_keys(data, ("cycles", "remind_days_before"), "repurchase", RepurchaseError)
        cycles = data.get("cycles", {})
        if not isinstance(cycles, Mapping):
            raise RepurchaseError("repurchase.cycles: a table of product = days")
        for product, days in cycles.items():
            if isinstance(days, bool) or not isinstance(days, int | float) or days <= 0:
                raise RepurchaseError(f"repurchase.cycles.{product}: a number of days above 0")
        before = data.get("remind_days_before", cls.remind_days_before)
        if isinstance(before, bool) or not isinstance(before, int | float) or before < 0:
            raise RepurchaseError("repurchase.remind_days_before: a number of days, at least 0")
        return cls({str(k): float(v) for k, v in cycles.items()}, float(before))


def reminder_due(product: str | None, purchased_at: datetime, policy: RepurchasePolicy) -> datetime | None:
    """When to remind the customer's consultant, or None for a product without a cycle."""
    cycle = policy.cycles.get(product or "")
    if cycle is None:
        return None
    return purchased_at + timedelta(days=max(cycle - policy.remind_days_before, 0.0))
