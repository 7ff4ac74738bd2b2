"""When notify's timer must look at an open task, and whether it is overdue: the first-response
deadline (until it is missed, once) and the day the task returns to the shared pool if nobody answers.
Pure; what the timer does then is in `pool.py` (the return) and the service (the escalation)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from services.notify.domain.pool import PoolPolicy

NO_DEADLINE_QUEUES = frozenset({"verification", "collision", "pool"})  # nobody is due to answer these first


def _waiting(task: Mapping[str, Any]) -> bool:
    return task.get("status") == "open" and task.get("first_response_at") is None


def is_overdue(task: Mapping[str, Any], now: datetime) -> bool:
    """An open task past its first-response deadline, not answered, not yet marked breached."""
    return (_waiting(task) and task.get("breached_at") is None and task.get("queue") not in NO_DEADLINE_QUEUES
            and task.get("due_at") is not None and task["due_at"] <= now)


def next_look(task: Mapping[str, Any], pool: PoolPolicy) -> datetime | None:
    """The next moment the timer has something to decide about this task (None: nothing ever again,
    unless the task changes): its deadline, or when it would return to the pool (`returns_to_pool`)."""
    if not _waiting(task):
        return None
    times = []
    if task.get("breached_at") is None and task.get("queue") not in NO_DEADLINE_QUEUES and task.get("due_at"):
        times.append(task["due_at"])
    if pool.enabled and task.get("queue", "sales") == "sales" and task.get("consultant_id"):
        back = (task.get("assigned_at") or task["created_at"]) + timedelta(days=pool.return_after_days)
        times.append(max(back, task.get("protected_until") or back))
    return min(times, default=None)
