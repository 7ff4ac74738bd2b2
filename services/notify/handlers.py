"""notify use cases: create and route follow-up tasks, record consultants' outcomes, manage consultants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadflow.runtime.messages import Handled, Outgoing
from leadflow.sdk import EventProducer
from schemas.scores import ScoreChanged
from schemas.tasks import Outcome, TaskCreated, TaskOutcomeRecorded, TaskStatus
from schemas.topics import TASKS_EVENTS, TASKS_OUTCOMES
from services.notify.adapters.repository import NotifyRepository
from services.notify.domain.tasks import due_at, route, task_id, task_reason

# Outcomes after which there is nothing left to follow up on this task.
CLOSING_OUTCOMES = frozenset({Outcome.WON, Outcome.LOST, Outcome.ORDERED, Outcome.INVALID_NUMBER})


class TaskNotFound(LookupError):
    pass


class NotifyService:
    def __init__(
        self,
        repo: NotifyRepository,
        *,
        clock: Callable[[], datetime],
        producer: EventProducer | None = None,
        topic_prefix: str = "",
    ) -> None:
        self.repo = repo
        self._clock = clock
        self._producer = producer  # only the API process publishes outcomes
        self._prefix = topic_prefix

    async def on_score_changed(self, change: ScoreChanged) -> Handled:
        tenant, one_id = change.tenant_id, change.one_id
        tid = task_id(tenant, one_id, change.trigger.event_id)
        open_id = await self.repo.open_task_id(tenant, one_id)
        if open_id == tid:  # a replay of the change that created the open task: emit it again
            doc = await self.repo.task(tenant, tid)
            return Handled([Outgoing(TASKS_EVENTS, one_id, TaskCreated.model_validate(doc["event"]))])
        reason = task_reason(change, has_open_task=open_id is not None)
        if reason is None:
            return Handled()
        now = self._clock()
        assignment = route(change.lead.store_id, await self.repo.consultants_with_load(tenant))
        event = TaskCreated(
            task_id=tid,
            tenant_id=tenant,
            one_id=one_id,
            consultant_id=assignment.consultant_id,
            grade=change.grade,
            score=change.score,
            reason=reason,
            trigger_event_id=change.trigger.event_id,
            due_at=due_at(change.grade, now),
            created_at=now,
        )
        created = await self.repo.create_task({
            "_id": tid,
            "tenant_id": tenant,
            "one_id": one_id,
            "consultant_id": assignment.consultant_id,
            "routing_rule": assignment.rule,
            "status": TaskStatus.OPEN.value,
            "grade": change.grade.value,
            "score": change.score,
            "reason": reason,
            "trigger_event_id": change.trigger.event_id,
            "store_id": change.lead.store_id,
            "lead_name": change.lead.name,
            "product": change.lead.product,
            "due_at": event.due_at,
            "created_at": now,
            "outcomes": [],
            "event": event.model_dump(mode="json"),
        })
        if created and assignment.consultant_id:
            await self.repo.count_open_task(tenant, assignment.consultant_id, +1)
        await self.repo.take_slot(tenant, one_id, tid)
        return Handled([Outgoing(TASKS_EVENTS, one_id, event)])

    # ---- consultants' side (called from the API) -------------------------------------------------
    async def record_outcome(
        self, *, tenant_id: str, task_id: str, outcome: Outcome, reason: str | None, note: str | None,
        consultant_id: str | None,
    ) -> TaskOutcomeRecorded:
        task = await self.repo.task(tenant_id, task_id)
        if task is None or (consultant_id and task.get("consultant_id") != consultant_id):
            raise TaskNotFound(task_id)
        now = self._clock()
        event = TaskOutcomeRecorded(
            outcome_id=str(uuid.uuid4()),
            task_id=task_id,
            tenant_id=tenant_id,
            one_id=task["one_id"],
            consultant_id=task.get("consultant_id"),
            outcome=outcome,
            reason=reason,
            note=note,
            recorded_at=now,
        )
        close = outcome in CLOSING_OUTCOMES and task["status"] == TaskStatus.OPEN.value
        await self.repo.record_outcome(
            {"_id": event.outcome_id, **event.model_dump(mode="python"), "published": False}, close=close, now=now
        )
        if close:
            await self.repo.free_slot(tenant_id, task["one_id"], task_id)
            if task.get("consultant_id"):
                await self.repo.count_open_task(tenant_id, task["consultant_id"], -1)
        if self._producer is None:
            raise RuntimeError("this NotifyService has no producer for tasks.outcomes")
        topic = TASKS_OUTCOMES.qualified(self._prefix)
        await asyncio.to_thread(self._producer.send_all, [(topic, task["one_id"].encode(), event.to_bytes())])
        await self.repo.mark_outcome_published(event.outcome_id)
        return event

    async def upsert_consultant(self, *, tenant_id: str, consultant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return await self.repo.upsert_consultant(tenant_id, consultant_id, {**fields, "updated_at": self._clock()})

    async def tasks(self, *, tenant_id: str, consultant_id: str | None, status: TaskStatus | None,
                    one_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return await self.repo.list_tasks(tenant_id, consultant_id=consultant_id, status=status, one_id=one_id, limit=limit)
