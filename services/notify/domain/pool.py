"""The shared pool (公海): leads nobody followed up return to it, and consultants claim them under a
protection period, a daily claim limit and a cool-down before the previous owner may take one back.
Pure; `now` and the tenant's local `today` are passed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from services.notify.domain.keys import check_keys


class PoolError(ValueError):
    pass


@dataclass(frozen=True)
class PoolPolicy:
    enabled: bool = True
    return_after_days: float = 3.0  # an open task without any outcome this long after assignment returns to the pool
    protection_days: float = 7.0  # a claimer keeps the person at least this long
    daily_claim_limit: int = 10  # claims per consultant per local day
    cooldown_days: float = 7.0  # the consultant it was taken from may not claim it back before this

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PoolPolicy:
        check_keys(data, (f.name for f in fields(cls)), "pool", PoolError)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "enabled":
                if not isinstance(value, bool):
                    raise PoolError("pool.enabled: true or false")
            elif key == "daily_claim_limit":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise PoolError("pool.daily_claim_limit: a whole number, at least 0")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PoolError(f"pool.{key}: a number of days, at least 0")
            kwargs[key] = value
        return cls(**kwargs)


def pool_return_at(task: Mapping[str, Any], policy: PoolPolicy) -> datetime | None:
    """When an open task nobody followed up goes back to the pool (None: it never does as it stands). A
    task under protection (just claimed) stays with its claimer until the protection ends."""
    if not policy.enabled or task.get("status") != "open" or task.get("queue", "sales") != "sales":
        return None
    if not task.get("consultant_id") or task.get("first_response_at") is not None:
        return None
    back = (task.get("assigned_at") or task["created_at"]) + timedelta(days=policy.return_after_days)
    return max(back, task.get("protected_until") or back)


def returns_to_pool(task: Mapping[str, Any], now: datetime, policy: PoolPolicy) -> bool:
    """Whether an open task nobody followed up goes back to the pool now."""
    at = pool_return_at(task, policy)
    return at is not None and now >= at


@dataclass(frozen=True)
class ClaimDecision:
    ok: bool
    reason: str  # ok | not_in_pool | daily_limit | cooldown
    message: str  # for the consultant, in Chinese


def may_claim(task: Mapping[str, Any], consultant_id: str, claims_today: int, now: datetime,
              policy: PoolPolicy) -> ClaimDecision:
    if task.get("queue") != "pool" or task.get("status") != "open":
        return ClaimDecision(False, "not_in_pool", "该线索不在公海中")
    if claims_today >= policy.daily_claim_limit:
        return ClaimDecision(False, "daily_limit", f"今日领取已达上限（{policy.daily_claim_limit} 条）")
    if task.get("previous_consultant_id") == consultant_id:
        until = task["pooled_at"] + timedelta(days=policy.cooldown_days)
        if now < until:
            return ClaimDecision(False, "cooldown", f"冷却期内，{until:%Y-%m-%d %H:%M} 后才能再次领取")
    return ClaimDecision(True, "ok", "领取成功")
