"""Tasks and consultants: the consultant's list, outcomes, and the roster."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from kafka.errors import KafkaError

from schemas.tasks import TaskStatus
from services.gateway.deps import Ops, ServicesDep, Worker
from services.gateway.models import (
    ClaimOut,
    ConsultantIn,
    InboxMessageOut,
    PushOut,
    ConsultantOut,
    OutcomeIn,
    OutcomeOut,
    PerformanceOut,
    TaskOut,
)
from services.notify.handlers import ClaimRefused, TaskNotFound

# On FerretDB the API and the notify worker take turns on a task's person and on a consultant (leases):
# a change that waits too long is refused with Retry-After rather than held (services/gateway/app.py).
BUSY: dict[int | str, dict] = {503: {"description": "Busy with this task or consultant: retry after `Retry-After` seconds."}}

router = APIRouter(tags=["tasks"])

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


@router.get("/v1/tasks", response_model=list[TaskOut])
async def list_tasks(
    caller: Worker,
    services: ServicesDep,
    consultant_id: Annotated[str | None, Query(max_length=64)] = None,
    status: TaskStatus | None = None,
    one_id: Annotated[str | None, Query(max_length=64, description="only this person's tasks")] = None,
    queue: Annotated[Literal["sales", "verification", "collision", "manager", "pool"] | None,
                     Query(description="verification: suspect leads; collision: 撞单 for ops to decide; manager: "
                                       "nobody could take it; pool: the shared pool (公海) to claim from")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    """Tasks by due time. A consultant's key sees only that consultant's tasks, and the shared pool."""
    if caller.consultant_id:
        consultant_id = None if queue == "pool" else caller.consultant_id
    docs = await services.notify.tasks(tenant_id=caller.tenant_id, consultant_id=consultant_id, status=status,
                                       one_id=one_id, queue=queue, limit=limit)
    return [TaskOut(task_id=d["_id"], **{k: v for k, v in d.items() if k != "escalated_to" or v}) for d in docs]


@router.post("/v1/tasks/{task_id}/outcome", response_model=OutcomeOut, status_code=status.HTTP_201_CREATED,
             responses={404: {}, 503: {"description": "Busy, or the outcome is stored but not yet published: retry."}})
async def post_outcome(task_id: IdPath, body: OutcomeIn, caller: Worker, services: ServicesDep):
    """Record what happened; the outcome goes to tasks.outcomes."""
    try:
        event = await services.notify.record_outcome(
            tenant_id=caller.tenant_id, task_id=task_id, outcome=body.outcome, reason=body.reason,
            note=body.note, consultant_id=caller.consultant_id, next_follow_up_at=body.next_follow_up_at,
        )
    except TaskNotFound:
        raise HTTPException(404, "no such task for this caller") from None
    except KafkaError as exc:
        raise HTTPException(503, f"outcome stored but not yet published ({type(exc).__name__})") from None
    return OutcomeOut(outcome_id=event.outcome_id, task_id=task_id, outcome=event.outcome, recorded_at=event.recorded_at)


@router.post("/v1/tasks/{task_id}/accept", response_model=TaskOut, responses={404: {}, **BUSY})
async def accept(task_id: IdPath, caller: Worker, services: ServicesDep):
    """The consultant takes the task on (接单)."""
    try:
        doc = await services.notify.accept(tenant_id=caller.tenant_id, task_id=task_id, consultant_id=caller.consultant_id)
    except TaskNotFound:
        raise HTTPException(404, "no such task for this caller") from None
    return TaskOut(task_id=doc["_id"], **{k: v for k, v in doc.items() if k != "escalated_to" or v})


@router.put("/v1/consultants/{consultant_id}", response_model=ConsultantOut, responses=BUSY)
async def put_consultant(consultant_id: IdPath, body: ConsultantIn, caller: Ops, services: ServicesDep):
    """Create or replace a consultant of the caller's tenant."""
    doc = await services.notify.upsert_consultant(
        tenant_id=caller.tenant_id, consultant_id=consultant_id, fields=body.model_dump(mode="json")
    )
    return ConsultantOut(**doc)


@router.post("/v1/pool/{task_id}/claim", response_model=ClaimOut, responses={404: {}, 409: {}, 422: {}, **BUSY})
async def claim(task_id: IdPath, caller: Worker, services: ServicesDep,
                consultant_id: Annotated[str | None, Query(max_length=64, description="ops: for whom")] = None):
    """Claim a lead from the shared pool (公海): within the daily limit, not back within the cool-down;
    it is then protected for the tenant's period. 409 says why a claim was refused."""
    who = caller.consultant_id or consultant_id
    if not who:
        raise HTTPException(422, [{"loc": ["query", "consultant_id"], "msg": "ops must name the consultant",
                                   "type": "missing"}])
    try:
        task = await services.notify.claim(tenant_id=caller.tenant_id, task_id=task_id, consultant_id=who)
    except TaskNotFound:
        raise HTTPException(404, "no such task for this caller") from None
    except ClaimRefused as refused:
        raise HTTPException(409, {"reason": refused.decision.reason, "message": refused.decision.message}) from None
    return ClaimOut(task_id=task_id, consultant_id=who, due_at=task["due_at"], protected_until=task["protected_until"])


@router.get("/v1/consultants/performance", response_model=list[PerformanceOut])
async def consultant_performance(caller: Ops, services: ServicesDep,
                                 days: Annotated[int, Query(ge=1, le=365, description="tasks created in the last days")] = 30):
    """First response, SLA adherence, and conversion against what the grades of each consultant's leads
    predict (the tenant's own conversion per grade): best conversion index first."""
    rows = await services.notify.performance(caller.tenant_id, days)
    return [PerformanceOut(consultant_id=p.consultant_id, tasks=p.tasks, responded=p.responded,
                           first_response_median_min=p.first_response_median_min, sla_adherence=p.sla_adherence,
                           conversions=p.conversions, conversion_rate=p.conversion_rate,
                           expected_conversions=p.expected_conversions, conversion_index=p.conversion_index)
            for p in rows]


@router.get("/v1/inbox", response_model=list[InboxMessageOut])
async def inbox(caller: Worker, services: ServicesDep,
                consultant_id: Annotated[str | None, Query(max_length=64, description="ops: whose inbox")] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50):
    """A consultant's in-app messages (new tasks, reassignments, escalations), newest first."""
    who = caller.consultant_id or consultant_id
    if not who:
        raise HTTPException(422, [{"loc": ["query", "consultant_id"], "msg": "ops must name the consultant",
                                   "type": "missing"}])
    docs = await services.notify.inbox(caller.tenant_id, who, limit)
    return [InboxMessageOut(message_id=d["_id"], **{k: v for k, v in d.items() if k != "_id"}) for d in docs]


@router.get("/v1/tasks/{task_id}/pushes", response_model=list[PushOut], responses={404: {}})
async def task_pushes(task_id: IdPath, caller: Ops, services: ServicesDep):
    """Every push of a task, per version and channel, with its delivery status."""
    if await services.notify.task(caller.tenant_id, task_id) is None:
        raise HTTPException(404, "no such task for this caller")
    return [PushOut(push_id=d["_id"], **{k: v for k, v in d.items() if k != "_id"})
            for d in await services.notify.pushes_of(caller.tenant_id, task_id)]
