"""Task events: lifecycle of follow-up tasks (`tasks.events`) and consultant outcomes (`tasks.outcomes`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from schemas.base import Event
from schemas.scores import Grade


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Outcome(StrEnum):
    CONTACTED = "contacted"
    NO_ANSWER = "no_answer"
    INVALID_NUMBER = "invalid_number"
    APPOINTMENT_SET = "appointment_set"
    VISITED = "visited"
    ORDERED = "ordered"
    WON = "won"
    LOST = "lost"


class TaskCreated(Event):
    """A follow-up task was created and routed (consultant_id None: the tenant's unassigned queue)."""

    task_id: str
    tenant_id: str
    one_id: str
    consultant_id: str | None = None
    store_id: str | None = None  # the consultant's store (since v1.1)
    queue: str = "sales"  # sales | verification (since v1.1)
    grade: Grade
    score: float
    reason: str
    trigger_event_id: str
    due_at: datetime
    created_at: datetime


class TaskOutcomeRecorded(Event):
    """A consultant reported what happened on a task."""

    outcome_id: str
    task_id: str
    tenant_id: str
    one_id: str
    consultant_id: str | None = None
    outcome: Outcome
    reason: str | None = None
    note: str | None = None
    recorded_at: datetime
