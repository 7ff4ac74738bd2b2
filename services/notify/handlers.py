"""notify use cases: turn the tenant's triggers into follow-up tasks routed to the right consultant
(one open task per person: new signals refresh it); check first-response deadlines in working time on a
timer, escalating and reassigning on a breach; return neglected leads to the shared pool and let
consultants claim them; follow merges and erasures of persons; record consultants' outcomes; manage
consultants; report their performance."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

from leadflow.runtime import metrics
from leadflow.runtime.agenda import Entry
from leadflow.runtime.leases import MAX_RESOLVES, LeaseTimeout, PersonGuard, PersonLeases
from leadflow.runtime.messages import Handled, Outgoing
from leadflow.runtime.ownership import OVERFETCH, Owned, Owns, everything, unpartitioned
from leadflow.runtime.persons import persons_of
from leadflow.sdk import EventProducer
from schemas.identity import PersonErased, PersonsMerged, PersonSplit
from schemas.leads import LeadSnapshot, Owner, Stage, Verdict
from schemas.scores import Grade, ScoreChanged
from schemas.tasks import Outcome, TaskCreated, TaskOutcomeRecorded, TaskStatus
from schemas.topics import TASKS_EVENTS, TASKS_OUTCOMES
from services.notify.adapters.channels import Channel
from services.notify.adapters.pushes import PushOutbox
from services.notify.adapters.repository import NotifyRepository, open_task_ids
from services.notify.domain.deadlines import is_overdue, next_look
from services.notify.domain.delivery import RetryPolicy
from services.notify.domain.merging import OpenTask, one_per_consultant, primary
from services.notify.domain.performance import Performance, performance
from services.notify.domain.policy import NotifyPolicy, NotifyPolicyBook
from services.notify.domain.pool import ClaimDecision, may_claim, returns_to_pool
from services.notify.domain.repurchase import PURCHASES, reminder_due
from services.notify.domain.repurchase import REASON as REPURCHASE
from services.notify.domain.routing import Assignment, Consultant, route
from services.notify.domain.tasks import GRADE_RANK, TASK_GRADES, assign, decide, task_id
from services.notify.pushing import Pusher

# Outcomes after which there is nothing left to follow up on this task.
CLOSING_OUTCOMES = frozenset({Outcome.WON, Outcome.LOST, Outcome.ORDERED, Outcome.INVALID_NUMBER})
CONVERTING_OUTCOMES = frozenset({Outcome.WON, Outcome.ORDERED})
log = logging.getLogger(__name__)
LEASES = "task_leases"  # the persons' leases while several workers run (`PersonGuard`)

# On a task: the consultants a timer's change (a missed deadline's escalation or reassignment) still owes
# pushes to, written with the change and struck off once they are queued (`_announce_owed`).
OWED = "pushes_owed_to"
GAUGE_EVERY = 10  # timer runs between two counts of open tasks (a scan of the open tasks)
ACKNOWLEDGED = frozenset({"new_valid_lead"})  # the customer hears back at once only for a lead we trust


class TaskNotFound(LookupError):
    pass


class ClaimRefused(Exception):
    def __init__(self, decision: ClaimDecision) -> None:
        super().__init__(decision.message)
        self.decision = decision


class NotifyService:
    def __init__(
        self,
        repo: NotifyRepository,
        *,
        clock: Callable[[], datetime],
        producer: EventProducer | None = None,
        topic_prefix: str = "",
        policies: NotifyPolicyBook | None = None,
        timer_batch: int = 200,
        timer_interval_s: float = 30.0,
        outbox: PushOutbox | None = None,
        channels: dict[str, Channel] | None = None,
        retry: RetryPolicy = RetryPolicy(),
        delivery_interval_s: float = 2.0,
        inbox_url: str | None = None,
        atomic_store: bool = False,
    ) -> None:
        self.repo = repo
        self.owns: Owns = everything  # the timer's persons; one worker of several: its partitions' (bootstrap)
        self.owned: Owned = unpartitioned  # ... and those partitions (bootstrap)
        self.outbox = outbox
        self.policies = policies or NotifyPolicyBook()
        self.channels = channels if channels is not None else {}
        self.delivery_interval_s = delivery_interval_s
        self.pusher = Pusher(repo, outbox, self.policies, self.channels, retry=retry, clock=clock, inbox_url=inbox_url,
                             batch=timer_batch)
        self.timer_batch = timer_batch
        self.timer_interval_s = timer_interval_s
        self._clock = clock
        self._producer = producer  # only the API process publishes outcomes
        self._prefix = topic_prefix
        # A worker's agents (score changes, identity changes) and its timer write the same slots and tasks:
        # one change at a time, and the persons' leases when notify runs as several workers
        # (`leadflow/runtime/leases.py`; the entrypoint sets `guard.sole`). The API writes tasks and
        # consultants too: on a store that applies an update as a read and a write (FerretDB v1), the
        # worker and the API take the leases even when the worker is alone.
        self.atomic_store = atomic_store
        self.guard = PersonGuard(PersonLeases(repo.tasks.database, collection=LEASES), repo.resolve)
        self.guard.sole = lambda: self.atomic_store
        self._timer_runs = 0
        self._gauged: set[tuple[str, str]] = set()

    async def on_score_changed(self, change: ScoreChanged) -> Handled:
        if not self.guard.sole():
            # Most changes ask nothing of notify (no trigger fires, no open task to refresh): decided
            # under the worker's lock from one read of the person's slot, before the person's lease
            # (two store commands) is taken. Everybody else writes the slot under that lease, and the
            # decision reads nothing else, so deciding "nothing" on that read is what processing the
            # change just before their write would decide. Anything else is decided again under it.
            async with self.guard.locked():
                one_id, slot = await self.repo.resolve(change.tenant_id, change.one_id)
                if self._decided(change, one_id, slot) is None:
                    return Handled()
        async with self.guard.person(change.tenant_id, change.one_id):
            return await self._score_changed(change)

    def _decided(self, change: ScoreChanged, one_id: str, slot: dict[str, Any] | None) -> tuple[Any, ...] | None:
        """What the change asks of the person whose slot this is: None when nothing (no task to make or
        refresh, no purchase to remember), else (the change's task id, the open task ids, the decision)."""
        tid = task_id(change.tenant_id, one_id, change.trigger.event_id)
        open_ids = open_task_ids(slot)
        first = slot is None or not (open_ids or slot.get("last_task_id"))
        decision = decide(change, self.policies.for_tenant(change.tenant_id).triggers, has_open_task=bool(open_ids),
                          first=first)
        # The person's open task has this change's trigger: a replay of the change that made it, maybe unsent.
        replayed = slot is not None and slot.get("open_task_id") == tid
        if decision is None and not replayed and change.trigger.event_type not in PURCHASES:
            return None
        return tid, open_ids, decision

    def _today(self, policy: NotifyPolicy, now: datetime) -> date:
        return now.astimezone(policy.hours.zone).date()

    async def _score_changed(self, change: ScoreChanged) -> Handled:
        tenant = change.tenant_id
        one_id, slot = await self.repo.resolve(tenant, change.one_id)  # a merged person's change: the survivor's
        decided = self._decided(change, one_id, slot)
        if decided is None:
            return Handled()
        tid, open_ids, decision = decided
        if slot is not None and slot.get("open_task_id") == tid:
            doc = await self.repo.task(tenant, tid)
            if doc is not None and doc.get("signals", [None])[0] == change.change_id:
                # A replay of the change that created the task: send the task again only if the broker never
                # acknowledged it. Sending it again regardless closed a loop (leads and scoring also answer a
                # replay by sending again) that went round for ever once a task had a consultant.
                if doc.get("announced") or doc["status"] != TaskStatus.OPEN.value:
                    return Handled()
                return Handled([Outgoing(TASKS_EVENTS, one_id, TaskCreated.model_validate(doc["event"]))],
                               after_emit=lambda: self._announced(tenant, one_id, tid))
            # Otherwise a later change with the same trigger (the assignment's, say): decided like any other.
        if decision is None and change.trigger.event_type not in PURCHASES:
            return Handled()
        policy = self.policies.for_tenant(tenant)
        # An erasure runs under the same guard, so none comes between this look and the writes below.
        if slot is None and await self.repo.is_erased(tenant, one_id):
            return Handled()  # sent before the person was erased: nothing may bring them back, nor remind of them
        await self._remember_purchase(tenant, one_id, change, policy)
        if decision is None:
            return Handled()
        now = self._clock()
        if not decision.create:
            await self._refresh(tenant, open_ids[0], change, decision.reason, decision.detail, policy, now)
            return Handled()
        out = await self._open_task(
            tenant, one_id, tid, lead=change.lead, grade=change.grade, score=change.score, reason=decision.reason,
            detail=decision.detail, trigger_event_id=change.trigger.event_id, occurred_at=change.trigger.occurred_at,
            signal_id=change.change_id, policy=policy, now=now, source_channel=change.trigger.channel)
        return Handled(out, after_emit=(lambda: self._announced(tenant, one_id, tid)) if out else None)

    async def _announced(self, tenant: str, one_id: str, tid: str) -> None:
        # After the send, outside the change that made the task: a write to its person like any other.
        async with self.guard.person(tenant, one_id):
            await self.repo.mark_announced(tenant, tid)

    async def _open_task(self, tenant: str, one_id: str, tid: str, *, lead: LeadSnapshot, grade: Grade, score: float,
                         reason: str, detail: str, trigger_event_id: str, occurred_at: datetime, signal_id: str,
                         policy: NotifyPolicy, now: datetime, source_channel: str | None = None) -> list[Outgoing]:
        """Route, store and announce a new task (insert-once by its id), and name it the person's open task.
        A replay finds it stored and sends it again as it was first made, unless it is closed by now."""
        today = self._today(policy, now)
        consultants = await self.repo.consultants_with_load(tenant, today)
        assignment = assign(lead, reason, consultants, policy.routing, grade=grade.value, today=today, now=now)
        store_of = {c.consultant_id: c.store_id for c in consultants}
        deadline = policy.sla.deadline(grade.value if grade in TASK_GRADES else Grade.B.value, now, policy.hours)
        event = TaskCreated(
            task_id=tid,
            tenant_id=tenant,
            one_id=one_id,
            consultant_id=assignment.consultant_id,
            store_id=store_of.get(assignment.consultant_id) if assignment.consultant_id else assignment.store_id,
            queue=assignment.queue,
            grade=grade,
            score=score,
            reason=reason,
            trigger_event_id=trigger_event_id,
            due_at=deadline,
            created_at=now,
        )
        doc = {
            "_id": tid,
            "tenant_id": tenant,
            "one_id": one_id,
            "consultant_id": assignment.consultant_id,
            "routing_rule": assignment.rule,
            "routing_why": assignment.why,
            "queue": assignment.queue,
            "status": TaskStatus.OPEN.value,
            "grade": grade.value,
            "score": score,
            "reason": reason,
            "trigger_detail": detail,
            "trigger_event_id": trigger_event_id,
            "trigger_occurred_at": occurred_at,  # end-to-end latency: touchpoint to stored task
            "store_id": lead.store_id,
            "lead_name": lead.name,
            "product": lead.product,
            "due_at": deadline,
            "created_at": now,
            "assigned_at": now,
            "version": 1,
            "signals": [signal_id],
            "assignments": [{"consultant_id": assignment.consultant_id, "rule": assignment.rule, "why": assignment.why,
                             "at": now, "cause": "created"}],
            "outcomes": [],
            "event": event.model_dump(mode="json"),
        }
        await self._schedule(doc)
        created = await self.repo.create_task(doc)
        if created:
            metrics.TASKS_CREATED.labels(tenant, reason, grade.value).inc()
            metrics.END_TO_END_SECONDS.labels(tenant).observe(max(0.0, (now - occurred_at).total_seconds()))
            if assignment.consultant_id:
                await self._count(tenant, assignment.consultant_id, opened=+1, assigned_on=today)
        else:  # a replay after a crash: the task as it was created, unless it is closed by now
            existing = await self.repo.task(tenant, tid)
            if existing is None or existing["status"] != TaskStatus.OPEN.value:
                return []
            event = TaskCreated.model_validate(existing["event"])
        # Queued again on a replay: the push ids name the task version, so it is the same push, queued once.
        audience = [event.consultant_id] if event.consultant_id else await self.repo.managers_of(tenant, event.store_id)
        await self.pusher.announce(policy, await self.repo.task(tenant, tid), audience, now)
        if reason in ACKNOWLEDGED and event.consultant_id and policy.delivery.acknowledge_url and "webhook" in self.channels:
            await self.pusher.acknowledge(policy, event, source_channel, now)
        await self.repo.take_slot(tenant, one_id, tid)
        return [Outgoing(TASKS_EVENTS, one_id, event)]

    async def _remember_purchase(self, tenant: str, one_id: str, change: ScoreChanged, policy: NotifyPolicy) -> None:
        """A purchase of a product with a usage cycle: remind the consultant before it runs out."""
        if change.trigger.event_type not in PURCHASES:
            return
        due = reminder_due(change.lead.product, change.trigger.occurred_at, policy.repurchase)
        if due is None:
            return
        lead = change.lead
        await self.repo.set_reminder({
            "_id": f"{tenant}\x1f{one_id}\x1f{lead.product}", "tenant_id": tenant, "one_id": one_id,
            "product": lead.product, "purchase_event_id": change.trigger.event_id,
            "purchased_at": change.trigger.occurred_at, "due_at": due, "done": False, "store_id": lead.store_id,
            "lead_name": lead.name, "owner_consultant_id": lead.owner.consultant_id if lead.owner else None,
            "owner_store_id": lead.owner.store_id if lead.owner else None,
            "owner_since": lead.owner.since if lead.owner else None,
        })

    async def _remind(self, reminder: dict[str, Any], now: datetime) -> list[Outgoing]:
        """A supply running out becomes a task for the customer's consultant (their owner, by routing); a
        customer with an open task already gets the reminder on that task."""
        tenant, one_id = reminder["tenant_id"], reminder["one_id"]
        policy = self.policies.for_tenant(tenant)
        target, slot = await self.repo.resolve(tenant, one_id)
        if slot is None and await self.repo.is_erased(tenant, target):
            await self.repo.reminder_done(reminder["_id"], "", now)
            return []
        tid = task_id(tenant, target, f"repurchase\x1f{reminder['purchase_event_id']}")
        open_ids = [t for t in open_task_ids(slot) if t != tid]
        if open_ids:
            await self.repo.update_task(open_ids[0], {"updated_at": now}, push={"updates": {
                "reason": REPURCHASE, "detail": reminder["product"], "at": now, "grade": None}})
            await self.repo.reminder_done(reminder["_id"], open_ids[0], now)
            return []
        owner = Owner(consultant_id=reminder["owner_consultant_id"], store_id=reminder.get("owner_store_id"),
                      since=now) if reminder.get("owner_consultant_id") else None  # a customer stays with their consultant
        lead = LeadSnapshot(verdict=Verdict.VALID, stage=Stage.CUSTOMER, reachable=True, touchpoints=1,
                            first_seen_at=reminder["purchased_at"], last_seen_at=reminder["purchased_at"],
                            store_id=reminder.get("store_id"), product=reminder["product"], name=reminder.get("lead_name"),
                            owner=owner)
        out = await self._open_task(tenant, target, tid, lead=lead, grade=Grade.O, score=0.0, reason=REPURCHASE,
                                    detail=reminder["product"], trigger_event_id=reminder["purchase_event_id"],
                                    occurred_at=reminder["due_at"], signal_id=reminder["_id"], policy=policy, now=now)
        await self.repo.reminder_done(reminder["_id"], tid, now)
        return out

    async def _refresh(self, tenant: str, tid: str, change: ScoreChanged, reason: str, detail: str,
                       policy: NotifyPolicy, now: datetime) -> None:
        """New signals on a person with an open task update that task instead of making a second one: the
        grade and score, what fired, and a deadline brought forward when the grade rose. Keyed by the
        change id, so a replay changes nothing."""
        task = await self.repo.task(tenant, tid)
        if task is None or change.change_id in task.get("signals", ()):
            return
        fields: dict[str, Any] = {"grade": change.grade.value, "score": change.score, "updated_at": now,
                                  "version": task.get("version", 1) + 1,
                                  "signals": [*task.get("signals", ()), change.change_id][-50:]}
        if GRADE_RANK.get(change.grade, -1) > GRADE_RANK.get(task["grade"], -1) and task.get("first_response_at") is None:
            sooner = policy.sla.deadline(change.grade.value, now, policy.hours)
            if sooner < task["due_at"]:
                fields["due_at"] = sooner
                await self._schedule({**task, **fields})
        await self.repo.update_task(tid, fields, push={"updates": {"reason": reason, "detail": detail, "at": now,
                                                                   "grade": change.grade.value}})
        metrics.TASKS_REFRESHED.labels(tenant, reason).inc()

    # ---- the timer: deadlines and the pool ---------------------------------------------------------
    async def on_timer(self, now: datetime | None = None) -> Handled:
        """Missed first-response deadlines escalate (and reassign, once, by policy); tasks nobody answered
        for the tenant's pool period return to the shared pool; supplies running out become repurchase
        tasks. Each step is one write keyed by the task, and a task is only picked while it is in the state
        the step changes: a rerun does nothing twice. Tasks and reminders come from the agendas
        (`leadflow/runtime/agenda.py`), swept twice a day."""
        outgoing: list[Outgoing] = []
        async with self.guard.locked():
            now = now or self._clock()
            await self._sweep(now)
            tasks = self.repo.task_agenda
            for entry in self._mine(await tasks.due(now, self.timer_batch * OVERFETCH)):
                async with self.guard.also(entry.tenant_id, entry.owner):
                    task = await self.repo.task(entry.tenant_id, entry.key)
                    if task is not None and task["one_id"] != entry.owner:
                        await self._moved(entry, task, now)  # a merge gave it to another person since
                        continue
                    policy = self.policies.for_tenant(entry.tenant_id)
                    await self._announce_owed(policy, task, now)  # an earlier run's, cut short
                    if task is not None and is_overdue(task, now):
                        await self._breached(task, now)
                        task = await self.repo.task(entry.tenant_id, entry.key)
                    elif task is not None and returns_to_pool(task, now, policy.pool):
                        await self._to_pool(task, now)
                        task = await self.repo.task(entry.tenant_id, entry.key)
                    await tasks.settle(entry, self._next_look(task) if task else None, now)
            reminders = self.repo.reminder_agenda
            for entry in self._mine(await reminders.due(now, self.timer_batch * OVERFETCH)):
                async with self.guard.also(entry.tenant_id, entry.owner):
                    reminder = await self.repo.reminder(entry.tenant_id, entry.key)
                    if reminder is not None and not reminder["done"] and reminder["due_at"] <= now:
                        outgoing += await self._remind(reminder, now)
                        await reminders.drop(entry.tenant_id, entry.key)
                    else:
                        await reminders.settle(entry, reminder["due_at"] if reminder and not reminder["done"] else None, now)
        if self._timer_runs % GAUGE_EVERY == 0:
            await self._count_open_tasks()
        self._timer_runs += 1
        return Handled(outgoing)

    async def _sweep(self, now: datetime) -> None:
        """Twice a day: enter the tasks and reminders whose time comes within a day (they scan)."""
        tasks, reminders = self.repo.task_agenda, self.repo.reminder_agenda
        if await tasks.sweep_needed(now, self.owned()):
            found = [(t["tenant_id"], t["_id"], at, t["one_id"]) for t in await self.repo.waiting_tasks()
                     if (at := self._next_look(t)) is not None]
            log.info("notify: the task agenda's sweep entered %d tasks", await tasks.swept(found, now))
        if await reminders.sweep_needed(now, self.owned()):
            found = await self.repo.reminders_due_until(now + reminders.horizon)
            log.info("notify: the reminder agenda's sweep entered %d reminders", await reminders.swept(found, now))

    def _next_look(self, task: dict[str, Any]) -> datetime | None:
        return next_look(task, self.policies.for_tenant(task["tenant_id"]).pool)

    async def _schedule(self, task: dict[str, Any]) -> None:
        """Before a write that may bring the task's next look forward (a new task, a sooner deadline, a
        claim): its agenda entry."""
        await self.repo.task_agenda.schedule(task["tenant_id"], task["_id"], self._next_look(task), person=task["one_id"])

    async def _follow(self, task: dict[str, Any]) -> None:
        """After a merge gave the task to another person: its entry names that person, whose worker acts
        on it, or goes if the task waits for nothing (a duplicate closed, an answered task)."""
        await self.repo.task_agenda.place(task["tenant_id"], task["_id"], self._next_look(task),
                                          person=task["one_id"], now=self._clock())

    async def _moved(self, entry: Entry, task: dict[str, Any], now: datetime) -> None:
        """The entry names the person a merge took the task from (the merge died before it moved the
        entry): under the new person's lease, the entry follows the task to its worker."""
        async with self.guard.also(task["tenant_id"], task["one_id"]):
            task = await self.repo.task(task["tenant_id"], task["_id"])
            if task is None:
                await self.repo.task_agenda.drop(entry.tenant_id, entry.key)
            else:
                await self._follow(task)

    def _mine(self, entries: list[Entry]) -> list[Entry]:
        """The timer's share when notify runs as several workers: the persons of this worker's partitions."""
        return [e for e in entries if self.owns(e.owner)][:self.timer_batch]

    async def _count_open_tasks(self) -> None:
        counts = await self.repo.open_task_counts()
        per_queue: Counter[tuple[str, str]] = Counter()
        per_consultant: Counter[tuple[str, str]] = Counter()
        for (tenant, queue, consultant), n in counts.items():
            per_queue[tenant, queue] += n
            if consultant:
                per_consultant[tenant, consultant] += n
        for (tenant, queue), n in per_queue.items():
            metrics.OPEN_TASKS.labels(tenant, queue).set(n)
        for (tenant, queue) in self._gauged - set(per_queue):
            metrics.OPEN_TASKS.labels(tenant, queue).set(0)  # emptied since the last count
        self._gauged = set(per_queue)
        if fixed := await self.repo.repair_open_task_counts(per_consultant):
            log.info("notify: corrected the open-task count of %d consultants", fixed)

    async def _breached(self, task: dict[str, Any], now: datetime) -> None:
        tenant = task["tenant_id"]
        policy = self.policies.for_tenant(tenant)
        managers = await self.repo.managers_of(tenant, task.get("store_id")) if policy.escalation.manager else []
        metrics.SLA_BREACHES.labels(tenant, task["grade"]).inc()
        escalation = {"at": now, "due_at": task["due_at"], "consultant_id": task.get("consultant_id"),
                      "managers": managers}
        reassigned = len([a for a in task.get("assignments", ()) if a.get("cause") == "sla_breach"])
        current = task.get("consultant_id")
        if policy.escalation.reassign and reassigned < policy.escalation.max_reassignments and current:
            today = self._today(policy, now)
            others = [c for c in await self.repo.consultants_with_load(tenant, today) if c.consultant_id != current]
            lead = TaskCreated.model_validate(task["event"])  # what routing needs of the lead is on the task
            assignment = _reroute(task, lead, others, policy, today, now)
            if assignment is not None:
                deadline = policy.sla.deadline(task["grade"], now, policy.hours)
                await self.repo.update_task(task["_id"], {
                    "consultant_id": assignment.consultant_id, "routing_rule": assignment.rule,
                    "routing_why": assignment.why, "due_at": deadline, "assigned_at": now, "updated_at": now,
                    "previous_consultant_id": current, "version": task.get("version", 1) + 1,
                    OWED: [assignment.consultant_id, *managers],
                }, push={"escalations": escalation, "assignments": {
                    "consultant_id": assignment.consultant_id, "rule": assignment.rule, "why": assignment.why,
                    "at": now, "cause": "sla_breach"}})
                await self._count(tenant, current, opened=-1)
                await self._count(tenant, assignment.consultant_id, opened=+1, assigned_on=today)
                metrics.TASKS_REASSIGNED.labels(tenant, "sla_breach").inc()
                await self._announce_owed(policy, await self.repo.task(tenant, task["_id"]), now)
                return
        await self.repo.update_task(task["_id"], {"breached_at": now, "escalated_to": managers, "updated_at": now,
                                                  "version": task.get("version", 1) + 1, OWED: managers},
                                    push={"escalations": escalation})
        await self._announce_owed(policy, await self.repo.task(tenant, task["_id"]), now)

    async def _announce_owed(self, policy: NotifyPolicy, task: dict[str, Any] | None, now: datetime) -> None:
        """Queue the pushes that a timer's change of the task owes (named on the task by the change's own
        write), then strike them off. A run that fails in between leaves them named: the task's entry
        was not settled, so the next run reads the task again and queues them (the push ids name the
        version: none twice)."""
        if task is None or task.get(OWED) is None:
            return
        await self.pusher.announce(policy, task, task[OWED], now)
        await self.repo.unset_task_fields(task["_id"], OWED)

    async def _to_pool(self, task: dict[str, Any], now: datetime) -> None:
        tenant, current = task["tenant_id"], task["consultant_id"]
        await self.repo.update_task(task["_id"], {
            "queue": "pool", "consultant_id": None, "previous_consultant_id": current, "pooled_at": now,
            "updated_at": now,
        }, push={"assignments": {"consultant_id": None, "rule": "pool", "why": "长期未跟进，退回公海", "at": now,
                                 "cause": "pool"}})
        await self._count(tenant, current, opened=-1)
        metrics.TASKS_POOLED.labels(tenant).inc()

    # ---- pushes (services/notify/pushing.py) -----------------------------------------------------
    async def deliver(self, now: datetime | None = None) -> Handled:
        return await self.pusher.deliver(now)

    def stores_in_region(self, tenant_id: str, region: str) -> list[str]:
        """The stores the tenant's routing policy puts in a region (the dashboard's region drill-down)."""
        return sorted(s for s, r in self.policies.for_tenant(tenant_id).routing.store_regions.items() if r == region)

    async def task(self, tenant_id: str, task_id: str) -> dict[str, Any] | None:
        return await self.repo.task(tenant_id, task_id)

    async def inbox(self, tenant_id: str, consultant_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return await self.pusher.inbox(tenant_id, consultant_id, limit)

    async def pushes_of(self, tenant_id: str, task_id: str) -> list[dict[str, Any]]:
        return await self.pusher.pushes_of(tenant_id, task_id)

    # ---- the shared pool (called from the API) -----------------------------------------------------
    async def claim(self, *, tenant_id: str, task_id: str, consultant_id: str) -> dict[str, Any]:
        """A consultant takes a pooled lead: within the daily limit, not back within the cool-down, and
        then protected for the tenant's protection period. Two claims of one pooling: one wins."""
        async with self._task_held(tenant_id, task_id) as task:
            return await self._claim(task, consultant_id)

    async def _claim(self, task: dict[str, Any], consultant_id: str) -> dict[str, Any]:
        tenant_id, task_id = task["tenant_id"], task["_id"]
        policy = self.policies.for_tenant(tenant_id)
        now = self._clock()
        today = self._today(policy, now)
        decision = may_claim(task, consultant_id, await self.repo.claims_on(tenant_id, consultant_id, today), now,
                             policy.pool)
        if not decision.ok:
            raise ClaimRefused(decision)
        if not await self.repo.claim(tenant_id, task, consultant_id, today, now):
            raise ClaimRefused(ClaimDecision(False, "taken", "已被其他顾问领取"))
        deadline = policy.sla.deadline(task["grade"], now, policy.hours)
        fields = {"queue": "sales", "consultant_id": consultant_id, "assigned_at": now, "due_at": deadline,
                  "protected_until": now + timedelta(days=policy.pool.protection_days), "updated_at": now,
                  "routing_rule": "pool_claim", "routing_why": "从公海领取"}
        await self._schedule({**task, **fields, "breached_at": None})
        await self.repo.update_task(task_id, fields, push={"assignments": {
            "consultant_id": consultant_id, "rule": "pool_claim", "why": "从公海领取", "at": now, "cause": "claim"}})
        await self.repo.unset_task_fields(task_id, "breached_at")
        await self._count(tenant_id, consultant_id, opened=+1)
        metrics.POOL_CLAIMS.labels(tenant_id).inc()
        return {**task, **fields}

    async def latencies(self, tenant_id: str, hours: int) -> list[float]:
        """Seconds from each touchpoint to the task it caused, for tasks created in the last `hours`."""
        now = self._clock()
        return [(t["created_at"] - t["trigger_occurred_at"]).total_seconds()
                for t in await self.repo.tasks_since(tenant_id, now - timedelta(hours=hours))
                if t.get("trigger_occurred_at") is not None and t.get("reason") != REPURCHASE]

    async def performance(self, tenant_id: str, days: int) -> list[Performance]:
        now = self._clock()
        return performance(await self.repo.tasks_since(tenant_id, now - timedelta(days=days)), now)

    # ---- identity changes ------------------------------------------------------------------------
    async def on_identity_changed(self, change: PersonsMerged | PersonSplit | PersonErased) -> Handled:
        """Merged: the loser's open tasks move to the winner, at most one per consultant stays open.
        Split: the source keeps its tasks; the new person gets one when its own score warrants it.
        Erased: the persons' tasks, outcomes and slots are deleted."""
        tenant = change.tenant_id
        async with self.guard.person(tenant, *persons_of(change)):
            match change:
                case PersonsMerged():
                    if await self.repo.is_erased(tenant, change.winner) or await self.repo.is_erased(tenant, change.loser):
                        return Handled()  # a replay after an erasure must not bring anybody back
                    # The slot redirects first. A replay finds the tombstone, which still names the tasks:
                    # moving them again changes nothing.
                    buried = await self.repo.bury_slot(tenant, change.loser, change.winner)
                    await self._gather(tenant, change.winner, open_task_ids(buried))
                case PersonErased():
                    task_ids = await self.repo.erase(tenant, change.one_ids, at=change.erased_at,
                                                     uncount=lambda cid: self._count(tenant, cid, opened=-1))
                    if self.outbox is not None:
                        await self.outbox.erase_tasks(tenant, task_ids)
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
            await self._count(tenant, duplicate.consultant_id, opened=-1)
        first = primary(kept, (slot or {}).get("open_task_id"))
        await self.repo.set_slot(tenant, one_id, first, [t.task_id for t in kept if t.task_id != first])
        for tid in task_ids:  # their agenda entries follow them to the person they live on as
            if (task := await self.repo.task(tenant, tid)) is not None:
                await self._follow(task)

    # ---- consultants' side (called from the API) -------------------------------------------------
    async def accept(self, *, tenant_id: str, task_id: str, consultant_id: str | None) -> dict[str, Any]:
        """The consultant took the task on (接单). Not a first response: that is the first outcome."""
        async with self._task_held(tenant_id, task_id, consultant_id) as task:
            if task.get("accepted_at") is None:
                now = self._clock()
                await self.repo.update_task(task_id, {"accepted_at": now, "updated_at": now})
                task["accepted_at"] = now
            return task

    async def record_outcome(
        self, *, tenant_id: str, task_id: str, outcome: Outcome, reason: str | None, note: str | None,
        consultant_id: str | None, next_follow_up_at: datetime | None = None,
    ) -> TaskOutcomeRecorded:
        async with self._task_held(tenant_id, task_id, consultant_id) as task:
            event = await self._record_outcome(task, outcome, reason, note, next_follow_up_at)
        if self._producer is None:
            raise RuntimeError("this NotifyService has no producer for tasks.outcomes")
        topic = TASKS_OUTCOMES.qualified(self._prefix)
        await asyncio.to_thread(self._producer.send_all, [(topic, task["one_id"].encode(), event.to_bytes())])
        await self.repo.mark_outcome_published(event.outcome_id)
        return event

    async def _record_outcome(self, task: dict[str, Any], outcome: Outcome, reason: str | None, note: str | None,
                              next_follow_up_at: datetime | None) -> TaskOutcomeRecorded:
        tenant_id, task_id = task["tenant_id"], task["_id"]
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
        if next_follow_up_at is not None and not close:
            await self.repo.update_task(task_id, {"next_follow_up_at": next_follow_up_at})
        if close:
            await self.repo.free_slot(tenant_id, task["one_id"], task_id)
            await self._count(tenant_id, task.get("consultant_id"), opened=-1,
                              closed=outcome in CONVERTING_OUTCOMES)
        return event

    async def upsert_consultant(self, *, tenant_id: str, consultant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self._counting(tenant_id, consultant_id):  # its counters live on the same document
            return await self.repo.upsert_consultant(tenant_id, consultant_id, {**fields, "updated_at": self._clock()})

    # ---- what the API and the worker both write ----------------------------------------------------
    @asynccontextmanager
    async def _task_held(self, tenant_id: str, task_id: str,
                         consultant_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """For the API: the task, read under its person's lease where the store needs it (FerretDB v1
        applies an update as a read and a write of the whole document, so a consultant's outcome and the
        worker's escalation of the same task at once would lose one). The worker holds the same lease
        for every change of the person (`guard.sole` is never true on such a store). A consultant sees
        only their own tasks."""
        for _ in range(MAX_RESOLVES):
            task = await self.repo.task(tenant_id, task_id)
            if task is None or (consultant_id and task.get("consultant_id") != consultant_id):
                raise TaskNotFound(task_id)
            if self.guard.sole():
                yield task
                return
            async with self.guard.leases.held(tenant_id, [task["one_id"]]):
                again = await self.repo.task(tenant_id, task_id)
                if again is not None and again["one_id"] == task["one_id"]:  # not moved by a merge meanwhile
                    if consultant_id and again.get("consultant_id") != consultant_id:
                        raise TaskNotFound(task_id)
                    yield again
                    return
        raise LeaseTimeout(f"task {task_id} kept moving")

    def _counting(self, tenant_id: str, consultant_id: str):
        """A consultant's document: its counters change from the worker and from the API."""
        return self.guard.exclusive(tenant_id, f"consultant\x1f{consultant_id}")

    async def _count(self, tenant_id: str, consultant_id: str | None, *, opened: int = 0,
                     assigned_on: date | None = None, closed: bool | None = None) -> None:
        """Count a task opened (+1) or closed (-1) on a consultant, an assignment of the day, a closed task
        (converted or not)."""
        if not consultant_id:
            return
        async with self._counting(tenant_id, consultant_id):
            if opened:
                await self.repo.count_open_task(tenant_id, consultant_id, opened)
            if assigned_on is not None:
                await self.repo.count_assignment(tenant_id, consultant_id, assigned_on)
            if closed is not None:
                await self.repo.count_closed(tenant_id, consultant_id, closed)

    async def tasks(self, *, tenant_id: str, consultant_id: str | None, status: TaskStatus | None,
                    one_id: str | None = None, queue: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return await self.repo.list_tasks(tenant_id, consultant_id=consultant_id, status=status, one_id=one_id,
                                          queue=queue, limit=limit)


def _reroute(task: dict[str, Any], created: TaskCreated, others: list[Consultant], policy: NotifyPolicy, today: date,
             now: datetime) -> Assignment | None:
    """Another consultant for a breached task, by the tenant's routing without the one who missed it; None if
    nobody else can take it (it stays, and the manager knows). Routing needs the store and product, which
    the task keeps."""
    lead = LeadSnapshot(verdict=Verdict.VALID, stage=Stage.LEAD, reachable=True, touchpoints=1,
                        first_seen_at=task["created_at"], last_seen_at=task["created_at"], store_id=task.get("store_id"),
                        product=task.get("product"))
    assignment = route(lead, created.grade.value, others, policy.routing, today=today, now=now)
    return assignment if assignment.consultant_id else None
