"""When a lead deserves a task (the tenant's triggers), which queue it goes to, and task ids. Pure
functions; `now` is passed in. Who gets a sales task is `routing.py`'s; deadlines are `worktime.py`'s."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from schemas.leads import CollisionResolution, LeadSnapshot, Route, Stage, Verdict
from schemas.scores import Grade, ScoreChanged
from schemas.touchpoints import EventType
from services.notify.domain.keys import check_keys
from services.notify.domain.routing import Assignment, Consultant, RoutingPolicy, route

_TASK_NS = uuid.UUID("a54f3b0c-9a8e-4c7d-b1f2-6e0d3c2b1a99")

TASK_GRADES = frozenset({Grade.H, Grade.A, Grade.B, Grade.C})
GRADE_RANK = {Grade.C: 0, Grade.B: 1, Grade.A: 2, Grade.H: 3}

VERIFY_REASON = "verify_suspect_lead"
COLLISION_REASON = "store_collision"
NEW_LEAD = "new_valid_lead"
NEW_UNVERIFIED = "new_unverified_lead"
GRADE_ROSE = "grade_rose"
HIGH_INTENT = "high_intent"
REACTIVATED = "reactivated"
REPLACEMENT = "replacement_candidate_active"


class TriggerError(ValueError):
    pass


@dataclass(frozen=True)
class Triggers:
    """What makes a task, per tenant. A new valid lead always does (unless `new_lead` is off); later, a
    grade rising into `grades_up`, a high-intent event, a dormant customer coming back, or a replacement
    candidate showing interest again."""

    new_lead: bool = True
    grades_up: frozenset[Grade] = frozenset({Grade.H, Grade.A})
    high_intent: frozenset[EventType] = frozenset({EventType.TEST_DRIVE_BOOKED, EventType.PRICE_INQUIRED,
                                                   EventType.QUOTE_REQUESTED})
    reactivated: bool = True
    replacement: bool = True
    verification: bool = True  # suspect leads routed to verification get a verification task
    min_grade: Grade = Grade.C  # below this grade nothing makes a task (C: every grade)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Triggers:
        check_keys(data, cls.__dataclass_fields__, "triggers", TriggerError)
        kwargs: dict[str, Any] = {}
        try:
            for key in ("new_lead", "reactivated", "replacement", "verification"):
                if key in data:
                    if not isinstance(data[key], bool):
                        raise ValueError(f"{key}: true or false")
                    kwargs[key] = data[key]
            if "grades_up" in data:
                kwargs["grades_up"] = frozenset(Grade(g) for g in data["grades_up"])
            if "high_intent" in data:
                kwargs["high_intent"] = frozenset(EventType(e) for e in data["high_intent"])
            if "min_grade" in data:
                kwargs["min_grade"] = Grade(data["min_grade"])
        except ValueError as exc:
            raise TriggerError(f"triggers: {exc}") from None
        return cls(**kwargs)


@dataclass(frozen=True)
class Decision:
    """What a score change does: create a task for `reason`, or refresh the open one (same reason)."""

    reason: str
    create: bool  # False: update the person's open task (new signals on it), never a second task
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _rank(grade: Grade | None) -> int:
    return GRADE_RANK.get(grade, -1) if grade is not None else -1


def trigger_of(change: ScoreChanged, triggers: Triggers, *, first: bool) -> tuple[str, str] | None:
    """The trigger this change fires, with its detail, or None. `first`: the person never had a task."""
    lead = change.lead
    if change.grade in (Grade.O, Grade.F):
        return None
    if first and triggers.new_lead:
        return (NEW_LEAD if lead.verdict is Verdict.VALID else NEW_UNVERIFIED), ""
    if change.grade in triggers.grades_up and _rank(change.grade) > _rank(change.previous_grade) \
            and change.previous_grade is not None:
        return GRADE_ROSE, f"{change.previous_grade}->{change.grade}"
    if change.cause == "lead" and change.trigger.event_type in triggers.high_intent:
        return HIGH_INTENT, str(change.trigger.event_type)
    if triggers.reactivated and lead.stage is Stage.REACTIVATED and change.cause == "lead":
        return REACTIVATED, ""
    if triggers.replacement and lead.replacement_candidate and change.cause == "lead" \
            and change.trigger.event_type in triggers.high_intent | {EventType.FORM_SUBMITTED, EventType.STORE_VISITED}:
        return REPLACEMENT, str(change.trigger.event_type)
    return None


def decide(change: ScoreChanged, triggers: Triggers, *, has_open_task: bool, first: bool) -> Decision | None:
    """Whether this change makes a task, refreshes the open one, or does nothing. Junk never reaches
    anybody; a suspect lead goes to verification when the tenant routes it there (leads decides: `lead.route`)."""
    lead = change.lead
    if not lead.reachable or lead.verdict is Verdict.JUNK or lead.route is Route.NONE:
        return None
    if change.grade not in TASK_GRADES or _rank(change.grade) < _rank(triggers.min_grade):
        return None
    fired = trigger_of(change, triggers, first=first)
    if fired is None:
        return None
    reason, detail = fired
    if lead.route is Route.VERIFICATION:
        if not triggers.verification:
            return None
        reason = VERIFY_REASON
    elif _asks_ops(lead):
        reason = COLLISION_REASON
    return Decision(reason, create=not has_open_task, detail=detail)


def task_reason(change: ScoreChanged, has_open_task: bool, triggers: Triggers = Triggers(), *,
                first: bool = True) -> str | None:
    """The reason of a new task this change creates, or None (an open task is refreshed, not doubled)."""
    decision = decide(change, triggers, has_open_task=has_open_task, first=first)
    return decision.reason if decision is not None and decision.create else None


def _asks_ops(lead: LeadSnapshot) -> bool:
    return lead.collision is not None and lead.collision.resolution is CollisionResolution.ASK_OPS


def assign(lead: LeadSnapshot, reason: str, consultants: list[Consultant], policy: RoutingPolicy = RoutingPolicy(),
           *, grade: str = "B", today: date | None = None, now: datetime | None = None) -> Assignment:
    """Who gets the task: verification and ops-decided collisions go to their queues; sales tasks are routed."""
    if reason == VERIFY_REASON:
        return Assignment(None, "verification_queue", "verification", why="疑似线索，先核实")
    if reason == COLLISION_REASON:
        return Assignment(None, "collision_queue", "collision", why="跨店撞单，由运营决定归属")
    now = now or lead.last_seen_at
    return route(lead, grade, consultants, policy, today=today or now.date(), now=now)


def task_id(tenant_id: str, one_id: str, trigger_event_id: str) -> str:
    return str(uuid.uuid5(_TASK_NS, f"{tenant_id}\x1f{one_id}\x1f{trigger_event_id}"))
