"""notify use cases: create and route follow-up tasks, follow merges and erasures of persons, record
consultants' outcomes, manage consultants."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadflow.runtime import metrics
from leadflow.runtime.messages import Handled, Outgoing
from leadflow.sdk import EventProducer
from schemas.identity import PersonErased, PersonsMerged, PersonSplit
from schemas.scores import ScoreChanged
from schemas.tasks import Outcome, TaskCreated, TaskOutcomeRecorded, TaskStatus
from schemas.topics import TASKS_EVENTS, TASKS_OUTCOMES
from services.notify.adapters.repository import NotifyRepository, open_task_ids
from services.notify.domain.merging import OpenTask, one_per_consultant, primary
from services.notify.domain.tasks import assign, due_at, task_id, task_reason

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
        # A worker's two agents (score changes, identity changes) write the same slots and tasks, and Faust
        # gives the same partition of both topics to the same worker: one change at a time.
        self._writing = asyncio.Lock()

    async def on_score_changed(self, change: ScoreChanged) -> Handled:
        async with self._writing:
            return await self._score_changed(change)

    async def _score_changed(self, change: ScoreChanged) -> Handled:
        tenant = change.tenant_id
        one_id, slot = await self.repo.resolve(tenant, change.one_id)  # a merged person's change: the survivor's
        tid = task_id(tenant, one_id, change.trigger.event_id)
        if slot is not None and slot.get("open_task_id") == tid:  # a replay of the change that created it
            doc = await self.repo.task(tenant, tid)
            return Handled([Outgoing(TASKS_EVENTS, one_id, TaskCreated.model_validate(doc["event"]))])
        reason = task_reason(change, has_open_task=bool(open_task_ids(slot)))
        if reason is None:
            return Handled()
        if slot is None and await self.repo.is_erased(tenant, one_id):
            return Handled()  # sent before the person was erased: nothing may bring them back
        now = self._clock()
        consultants = await self.repo.consultants_with_load(tenant)
        assignment = assign(change.lead, reason, consultants)
        store_of = {c.consultant_id: c.store_id for c in consultants}
        event = TaskCreated(
            task_id=tid,
            tenant_id=tenant,
            one_id=one_id,
            consultant_id=assignment.consultant_id,
            store_id=store_of.get(assignment.consultant_id) if assignment.consultant_id else None,
            queue=assignment.queue,
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
            "queue": assignment.queue,
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
        if created:
            metrics.TASKS_CREATED.labels(tenant, reason, change.grade.value).inc()
            metrics.END_TO_END_SECONDS.labels(tenant).observe(max(0.0, (now - change.trigger.occurred_at).total_seconds()))
        if created and assignment.consultant_id:
            await self.repo.count_open_task(tenant, assignment.consultant_id, +1)
        elif not created:  # a replay after a crash: the task as it was created, unless it is closed by now
            existing = await self.repo.task(tenant, tid)
            if existing is None or existing["status"] != TaskStatus.OPEN.value:
                return Handled()
            event = TaskCreated.model_validate(existing["event"])
        before = await self.repo.take_slot(tenant, one_id, tid)
        if before is None and await self.repo.is_erased(tenant, one_id):
            await self.repo.drop_task(tenant, tid)  # the person was erased meanwhile (by another worker)
            await self.repo.drop_slot(tenant, one_id)
            return Handled()
        return Handled([Outgoing(TASKS_EVENTS, one_id, event)])

    # ---- identity changes ------------------------------------------------------------------------
    async def on_identity_changed(self, change: PersonsMerged | PersonSplit | PersonErased) -> Handled:
        """Merged: the loser's open tasks move to the winner, at most one per consultant stays open.
        Split: the source keeps its tasks; the new person gets one when its own score warrants it.
        Erased: the persons' tasks, outcomes and slots are deleted."""
        tenant = change.tenant_id
        async with self._writing:
            match change:
                case PersonsMerged():
                    if await self.repo.is_erased(tenant, change.winner) or await self.repo.is_erased(tenant, change.loser):
                        return Handled()  # a replay after an erasure must not bring anybody back
                    # The slot redirects first. A replay finds the tombstone, which still names the tasks:
                    # moving them again changes nothing.
                    buried = await self.repo.bury_slot(tenant, change.loser, change.winner)
                    await self._gather(tenant, change.winner, open_task_ids(buried))
                case PersonErased():
                    await self.repo.erase(tenant, change.one_ids, at=change.erased_at)
        return Handled()

    async def _gather(self, tenant: str, one_id: str, task_ids: list[str]) -> None:
        """Give these open tasks to `one_id` (or whom it lives on as); one per consultant stays open."""
        one_id, slot = await self.repo.resolve(tenant, one_id)
        for tid in task_ids:
            await self.repo.move_task(tid, one_id)
        tasks = [await self.repo.task(tenant, tid) for tid in dict.fromkeys([*open_task_ids(slot), *task_ids])]
        kept, closing = one_per_consultant(
            OpenTask(t["_id"], t.get("consultant_id"), t["created_at"])
            for t in tasks if t is not None and t["status"] == TaskStatus.OPEN.value
        )
        for duplicate, instead in closing:
            await self.repo.close_duplicate(duplicate.task_id, instead.task_id, self._clock())
            if duplicate.consultant_id:
                await self.repo.count_open_task(tenant, duplicate.consultant_id, -1)
        first = primary(kept, (slot or {}).get("open_task_id"))
        await self.repo.set_slot(tenant, one_id, first, [t.task_id for t in kept if t.task_id != first])

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
                    one_id: str | None = None, queue: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return await self.repo.list_tasks(tenant_id, consultant_id=consultant_id, status=status, one_id=one_id,
                                          queue=queue, limit=limit)
