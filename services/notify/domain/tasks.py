"""When a lead deserves a task, who gets it, and by when. Pure functions; `now` is passed in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.leads import CollisionResolution, LeadSnapshot, Route, Verdict
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
    queue: str = "sales"  # sales | verification | collision


VERIFY_REASON = "verify_suspect_lead"
COLLISION_REASON = "store_collision"


def task_reason(change: ScoreChanged, has_open_task: bool) -> str | None:
    """Why this change deserves a new task, or None. Junk never reaches anybody; a suspect lead goes to
    verification when the tenant routes it there (leads decides: `lead.route`)."""
    lead = change.lead
    if has_open_task or not lead.reachable or lead.verdict is Verdict.JUNK or lead.route is Route.NONE:
        return None
    if change.grade not in TASK_GRADES:
        return None
    if lead.route is Route.VERIFICATION:
        return VERIFY_REASON
    if _asks_ops(lead):
        return COLLISION_REASON
    # A suspect lead routed to sales: the tenant chose to skip verification; the reason says so.
    return "new_valid_lead" if lead.verdict is Verdict.VALID else "new_unverified_lead"


def _asks_ops(lead: LeadSnapshot) -> bool:
    return lead.collision is not None and lead.collision.resolution is CollisionResolution.ASK_OPS


def assign(lead: LeadSnapshot, reason: str, consultants: list[Consultant]) -> Assignment:
    """Who gets the task: verification and ops-decided collisions go to their queues; a person with an
    owner goes back to the owner (撞单 kept with the owner) while the owner can take it; else `route`."""
    if reason == VERIFY_REASON:
        return Assignment(None, "verification_queue", "verification")
    if reason == COLLISION_REASON:
        return Assignment(None, "collision_queue", "collision")
    owner = lead.owner
    if owner is not None:
        mine = [c for c in consultants if c.consultant_id == owner.consultant_id and c.active and c.open_tasks < c.capacity]
        if mine:
            return Assignment(owner.consultant_id, "owner")
    return route(lead.store_id, consultants)


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
