"""When notify's timer must look at an open task, and whether it is overdue: the first-response
deadline (until it is missed, once) and the day the task returns to the shared pool if nobody answers.
Pure; what the timer does then is in `pool.py` (the return) and the service (the escalation)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.notify.domain.pool import PoolPolicy, pool_return_at

NO_DEADLINE_QUEUES = frozenset({"verification", "collision", "pool"})  # nobody is due to answer these first


def deadline(task: Mapping[str, Any]) -> datetime | None:
    """The first-response deadline still to be kept: open, unanswered, not yet marked breached."""
    if (task.get("status") != "open" or task.get("first_response_at") is not None
            or task.get("breached_at") is not None or task.get("queue") in NO_DEADLINE_QUEUES):
        return None
    return task.get("due_at")


def is_overdue(task: Mapping[str, Any], now: datetime) -> bool:
    """An open task past its first-response deadline, not answered, not yet marked breached."""
    due = deadline(task)
    return due is not None and due <= now


def next_look(task: Mapping[str, Any], pool: PoolPolicy) -> datetime | None:
    """The next moment the timer has something to decide about this task (None: nothing ever again,
    unless the task changes): its deadline, or when it would return to the pool."""
    return min(filter(None, (deadline(task), pool_return_at(task, pool))), default=None)
