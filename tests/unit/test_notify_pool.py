"""Notify, pure: the shared pool's rules, consultant performance against their leads' grades, and the
tenant policy file (triggers, routing, working hours, deadlines, escalation, pool)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from schemas.scores import Grade
from services.notify.domain.performance import grade_rates, performance
from services.notify.domain.policy import NotifyPolicyError, parse_policies
from services.notify.domain.pool import PoolError, PoolPolicy, may_claim, returns_to_pool
from services.notify.domain.routing import Strategy

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
POOL = PoolPolicy(return_after_days=3, protection_days=7, daily_claim_limit=2, cooldown_days=7)


def task(**fields) -> dict:
    return {"_id": "t-1", "status": "open", "queue": "sales", "consultant_id": "c-1", "created_at": NOW - timedelta(days=4),
            "assigned_at": NOW - timedelta(days=4), "grade": "A", "due_at": NOW - timedelta(days=4) + timedelta(hours=2),
            "outcomes": [], **fields}


# ---- the pool ----------------------------------------------------------------------------------------


def test_an_unanswered_task_returns_to_the_pool_after_the_period():
    assert returns_to_pool(task(), NOW, POOL)
    assert not returns_to_pool(task(assigned_at=NOW - timedelta(days=2)), NOW, POOL)
    assert not returns_to_pool(task(first_response_at=NOW - timedelta(days=3)), NOW, POOL)  # somebody called
    assert not returns_to_pool(task(status="done"), NOW, POOL)
    assert not returns_to_pool(task(queue="verification"), NOW, POOL)
    assert not returns_to_pool(task(protected_until=NOW + timedelta(days=1)), NOW, POOL)  # just claimed
    assert not returns_to_pool(task(), NOW, PoolPolicy(enabled=False))


def pooled(**fields) -> dict:
    return task(**{"queue": "pool", "consultant_id": None, "previous_consultant_id": "c-1",
                   "pooled_at": NOW - timedelta(days=1), **fields})


def test_claims_respect_the_daily_limit_and_the_previous_owners_cool_down():
    assert may_claim(pooled(), "c-2", 0, NOW, POOL).ok
    assert may_claim(pooled(), "c-2", 2, NOW, POOL).reason == "daily_limit"
    refused = may_claim(pooled(), "c-1", 0, NOW, POOL)
    assert refused.reason == "cooldown" and "冷却期" in refused.message
    assert may_claim(pooled(pooled_at=NOW - timedelta(days=8)), "c-1", 0, NOW, POOL).ok
    assert may_claim(task(), "c-2", 0, NOW, POOL).reason == "not_in_pool"


def test_pool_policy_names_bad_keys():
    with pytest.raises(PoolError, match="return_after"):
        PoolPolicy.from_mapping({"return_after": 3})
    with pytest.raises(PoolError, match="daily_claim_limit"):
        PoolPolicy.from_mapping({"daily_claim_limit": 1.5})
    assert PoolPolicy.from_mapping({"return_after_days": 5}).return_after_days == 5


# ---- performance -------------------------------------------------------------------------------------


def done(cid: str, grade: str, won: bool, minutes: float | None, due_minutes: float = 15) -> dict:
    created = NOW - timedelta(days=2)
    return {"consultant_id": cid, "grade": grade, "queue": "sales", "created_at": created, "assigned_at": created,
            "due_at": created + timedelta(minutes=due_minutes),
            "first_response_at": None if minutes is None else created + timedelta(minutes=minutes),
            "outcomes": [{"outcome": "won" if won else "lost"}]}


def test_a_consultant_handed_cold_leads_is_judged_against_what_cold_leads_convert():
    # c-hot converts 4 of 8 H leads (H converts at ~50% here); c-cold converts 2 of 8 C leads (C at ~20%).
    tasks = ([done("c-hot", "H", n < 4, 10) for n in range(8)] + [done("c-cold", "C", n < 2, 10) for n in range(8)]
             + [done("c-x", "H", n < 4, 10) for n in range(8)] + [done("c-y", "C", n < 1, 10) for n in range(8)])
    rates = grade_rates(tasks)
    assert rates["H"] > rates["C"]
    by = {p.consultant_id: p for p in performance(tasks, NOW)}
    assert by["c-hot"].conversion_rate > by["c-cold"].conversion_rate
    assert by["c-cold"].conversion_index > by["c-hot"].conversion_index  # better than their leads predict
    assert performance(tasks, NOW)[0].consultant_id == "c-cold"


def test_first_response_and_sla_adherence():
    tasks = [done("c-1", "H", False, 5), done("c-1", "H", False, 30), done("c-1", "H", False, None)]
    [p] = performance(tasks, NOW)
    assert (p.tasks, p.responded, p.first_response_median_min) == (3, 2, 17.5)
    assert (p.sla_met, p.sla_due) == (1, 3) and p.sla_adherence == pytest.approx(1 / 3)


# ---- the policy file ---------------------------------------------------------------------------------


def test_a_tenant_merges_over_the_default_key_by_key():
    book = parse_policies({
        "default": {"sla": {"H": "20m"}, "routing": {"strategy": "rotation"}, "pool": {"return_after_days": 5},
                    "hours": {"days": {"sun": []}}},
        "tenants": {"acme": {"sla": {"A": "1h"}, "escalation": {"reassign": False}}},
    })
    acme, other = book.for_tenant("acme"), book.for_tenant("other")
    assert acme.sla.first_response["H"] == timedelta(minutes=20) and acme.sla.first_response["A"] == timedelta(hours=1)
    assert other.sla.first_response["A"] == timedelta(hours=2)
    assert acme.routing.strategy is Strategy.ROTATION and acme.pool.return_after_days == 5
    assert not acme.escalation.reassign and other.escalation.reassign
    # Sunday closed: an H lead (20 min) at Saturday 20:50 Shanghai has 10 minutes on Saturday, 10 on Monday.
    saturday = datetime(2026, 12, 5, 12, 50, tzinfo=timezone.utc)
    assert other.sla.deadline(Grade.H.value, saturday, other.hours) == datetime(2026, 12, 7, 1, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize("data, where", [
    ({"default": {"slas": {}}}, "default.unknown tables slas"),
    ({"tenants": {"acme": {"pool": {"cooldown_days": -1}}}}, "tenants.acme.pool"),
    ({"tenants": {"acme": {"escalation": {"max_reassignments": "one"}}}}, "tenants.acme.escalation.max_reassignments"),
    ({"tenants": {"acme": {"sla": {"H": "soon"}}}}, "tenants.acme.sla"),
    ({"defaults": {}}, "unknown keys defaults"),
])
def test_a_bad_policy_names_the_tenant_and_key(data, where):
    with pytest.raises(NotifyPolicyError) as caught:
        parse_policies(data)
    assert where in str(caught.value)


# ---- repurchase reminders ----------------------------------------------------------------------------


def test_a_purchase_with_a_usage_cycle_is_reminded_before_it_runs_out():
    from services.notify.domain.repurchase import RepurchaseError, RepurchasePolicy, reminder_due

    policy = RepurchasePolicy.from_mapping({"cycles": {"益生菌": 30, "鱼油": 3}, "remind_days_before": 5})
    assert reminder_due("益生菌", NOW, policy) == NOW + timedelta(days=25)
    assert reminder_due("鱼油", NOW, policy) == NOW  # a cycle shorter than the lead time: at once
    assert reminder_due("Model Y", NOW, policy) is None and reminder_due(None, NOW, policy) is None
    with pytest.raises(RepurchaseError, match="cycles.益生菌"):
        RepurchasePolicy.from_mapping({"cycles": {"益生菌": 0}})
    assert parse_policies({"tenants": {"vita": {"repurchase": {"cycles": {"鱼油": 60}}}}}).for_tenant(
        "vita").repurchase.cycles == {"鱼油": 60.0}
