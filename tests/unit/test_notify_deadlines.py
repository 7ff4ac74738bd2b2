"""When notify's timer must look at a task next, and whether it is overdue (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notify.domain.deadlines import is_overdue, next_look
from services.notify.domain.pool import PoolPolicy

NOW = datetime(2026, 3, 2, 2, tzinfo=UTC)
POOL = PoolPolicy(return_after_days=3)


def task(**fields) -> dict:
    return {"status": "open", "queue": "sales", "consultant_id": "c1", "created_at": NOW, "assigned_at": NOW,
            "due_at": NOW + timedelta(minutes=15), **fields}


def test_an_unanswered_task_is_looked_at_by_its_deadline_then_by_its_return_to_the_pool():
    assert next_look(task(), POOL) == NOW + timedelta(minutes=15)
    assert not is_overdue(task(), NOW + timedelta(minutes=14))
    assert is_overdue(task(), NOW + timedelta(minutes=15))
    breached = task(breached_at=NOW + timedelta(minutes=20))
    assert not is_overdue(breached, NOW + timedelta(hours=1))  # marked once
    assert next_look(breached, POOL) == NOW + timedelta(days=3)


def test_a_claim_under_protection_returns_no_earlier_than_the_protection_ends():
    claimed = task(breached_at=NOW, protected_until=NOW + timedelta(days=7))
    assert next_look(claimed, POOL) == NOW + timedelta(days=7)


def test_answered_closed_and_pooled_tasks_and_queues_without_a_deadline_wait_for_nothing():
    assert next_look(task(first_response_at=NOW), POOL) is None
    assert next_look(task(status="closed"), POOL) is None
    assert next_look(task(queue="pool", consultant_id=None), POOL) is None
    verification = task(queue="verification", consultant_id=None)
    assert next_look(verification, POOL) is None and not is_overdue(verification, NOW + timedelta(days=1))
    assert next_look(task(), PoolPolicy(enabled=False)) == NOW + timedelta(minutes=15)
    assert next_look(task(breached_at=NOW), PoolPolicy(enabled=False)) is None


def test_a_task_from_before_queues_is_a_sales_task():
    old = task()
    del old["queue"]
    assert is_overdue(old, NOW + timedelta(hours=1)) and next_look(old, POOL) == NOW + timedelta(minutes=15)
