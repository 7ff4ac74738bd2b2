"""When a lead deserves a task, who gets it, and by when. Pure functions; `now` is passed in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.leads import Verdict
from schemas.scores import Grade, ScoreChanged

_TASK_NS = uuid.UUID("a54f3b0c-9a8e-4c7d-b1f2-6e0d3c2b1a99")

# First-response deadlines per grade (wall-clock for now; working time arrives with issue #6).
SLA = {
    Grade.H: timedelta(minutes=15),
    Grade.A: timedelta(hours=2),
    Grade.B: timedelta(hours=24),
    Grade.C: timedelta(hours=72),
}
TASK_GRADES = frozenset({Grade.H, Grade.A, Grade.B, Grade.C})


@dataclass(frozen=True)
class Consultant:
    consultant_id: str
    store_id: str
    active: bool
    capacity: int
    open_tasks: int


@dataclass(frozen=True)
class Assignment:
    consultant_id: str | None
    rule: str


def task_reason(change: ScoreChanged, has_open_task: bool) -> str | None:
    """Why this change deserves a new task, or None. Junk never reaches a consultant."""
    lead = change.lead
    if has_open_task or lead.verdict is not Verdict.VALID or not lead.reachable:
        return None
    if change.grade not in TASK_GRADES:
        return None
    return "new_valid_lead"


def task_id(tenant_id: str, one_id: str, trigger_event_id: str) -> str:
    return str(uuid.uuid5(_TASK_NS, f"{tenant_id}\x1f{one_id}\x1f{trigger_event_id}"))


def route(store_id: str | None, consultants: list[Consultant]) -> Assignment:
    """Same store first, then anyone active in the tenant; least loaded wins, id breaks ties."""
    available = [c for c in consultants if c.active and c.open_tasks < c.capacity]
    same_store = [c for c in available if store_id and c.store_id == store_id]
    for pool, rule in ((same_store, "same_store_least_loaded"), (available, "tenant_least_loaded")):
        if pool:
            chosen = min(pool, key=lambda c: (c.open_tasks / c.capacity, c.consultant_id))
            return Assignment(chosen.consultant_id, rule)
    return Assignment(None, "unassigned_queue")


def due_at(grade: Grade, now: datetime) -> datetime:
    return now + SLA.get(grade, SLA[Grade.C])
