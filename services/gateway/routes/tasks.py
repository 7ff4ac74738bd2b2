"""Tasks and consultants: the consultant's list, outcomes, and the roster."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from kafka.errors import KafkaError

from schemas.tasks import TaskStatus
from services.gateway.deps import Ops, ServicesDep, Worker
from services.gateway.models import ConsultantIn, ConsultantOut, OutcomeIn, OutcomeOut, TaskOut
from services.notify.handlers import TaskNotFound

router = APIRouter(tags=["tasks"])

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


@router.get("/v1/tasks", response_model=list[TaskOut])
async def list_tasks(
    caller: Worker,
    services: ServicesDep,
    consultant_id: Annotated[str | None, Query(max_length=64)] = None,
    status: TaskStatus | None = None,
    one_id: Annotated[str | None, Query(max_length=64, description="only this person's tasks")] = None,
    queue: Annotated[Literal["sales", "verification", "collision"] | None,
                     Query(description="verification: suspect leads; collision: 撞单 for ops to decide")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    """Tasks by due time. A consultant's key sees only that consultant's tasks."""
    if caller.consultant_id:
        consultant_id = caller.consultant_id
    docs = await services.notify.tasks(tenant_id=caller.tenant_id, consultant_id=consultant_id, status=status,
                                       one_id=one_id, queue=queue, limit=limit)
    return [TaskOut(task_id=d["_id"], **d) for d in docs]


@router.post("/v1/tasks/{task_id}/outcome", response_model=OutcomeOut, status_code=status.HTTP_201_CREATED,
             responses={404: {}, 503: {}})
async def post_outcome(task_id: IdPath, body: OutcomeIn, caller: Worker, services: ServicesDep):
    """Record what happened; the outcome goes to tasks.outcomes."""
    try:
        event = await services.notify.record_outcome(
            tenant_id=caller.tenant_id, task_id=task_id, outcome=body.outcome, reason=body.reason,
            note=body.note, consultant_id=caller.consultant_id,
        )
    except TaskNotFound:
        raise HTTPException(404, "no such task for this caller") from None
    except KafkaError as exc:
        raise HTTPException(503, f"outcome stored but not yet published ({type(exc).__name__})") from None
    return OutcomeOut(outcome_id=event.outcome_id, task_id=task_id, outcome=event.outcome, recorded_at=event.recorded_at)


@router.put("/v1/consultants/{consultant_id}", response_model=ConsultantOut)
async def put_consultant(consultant_id: IdPath, body: ConsultantIn, caller: Ops, services: ServicesDep):
    """Create or replace a consultant of the caller's tenant."""
    doc = await services.notify.upsert_consultant(
        tenant_id=caller.tenant_id, consultant_id=consultant_id, fields=body.model_dump()
    )
    return ConsultantOut(**doc)
