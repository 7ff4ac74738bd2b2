"""The notify store: the only writer of `consultants`, `tasks`, `task_slots` (the open task of a
person: `open_task_id`, plus `also_open` with other consultants after a merge; a merged person's slot
redirects with `merged_into`), `task_outcomes`, `pool_claims` (one per claim of a pooled task: its
`_id` names the task and the moment it was pooled, so two consultants cannot both win it),
`repurchase_reminders` (one per person and product: when their supply runs out) and
`task_erasures` (a digest of every erased one_id, never the one_id, so that a score change still in
flight cannot bring the person back), and the timer's agendas `task_agenda` and `reminder_agenda` (the
tasks and reminders due within a day, read instead of scanning `tasks` and the reminders:
`leadflow/runtime/agenda.py`).

Hot-path filters are `{_id: …}` alone (FerretDB v1 scans for anything else); consultants carry an
`open_tasks` counter so routing needs no count over tasks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.agenda import Agenda
from leadflow.runtime.persons import ErasureMarkers, follow
from leadflow.runtime.store import ensure_collections, find_owned, insert_once
from schemas.tasks import TaskStatus
from services.notify.domain.merging import DUPLICATE_AFTER_MERGE
from services.notify.domain.routing import Consultant

CONVERSION_PRIOR = 5  # pseudo-outcomes at the tenant's mean, so two lucky sales do not make a star




def _pid(tenant_id: str, one_id: str) -> str:
    return f"{tenant_id}\x1f{one_id}"




def open_task_ids(slot: dict[str, Any] | None) -> list[str]:
    """The open tasks a slot names: its own first, then those a merge brought along."""
    if not slot:
        return []
    return [t for t in (slot.get("open_task_id"), *slot.get("also_open", ())) if t]


class NotifyRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.consultants = db["consultants"]
        self.tasks = db["tasks"]
        self.slots = db["task_slots"]
        self.outcomes = db["task_outcomes"]
        self.claims = db["pool_claims"]
        self.reminders = db["repurchase_reminders"]
        self.erasures = ErasureMarkers(db["task_erasures"])
        self.task_agenda = Agenda(db["task_agenda"])  # keyed by task, owned by the task's person
        self.reminder_agenda = Agenda(db["reminder_agenda"])

    async def ensure_indexes(self) -> None:
        await self.task_agenda.ensure_indexes()
        await self.reminder_agenda.ensure_indexes()
        await ensure_collections(self.consultants, self.tasks, self.slots, self.outcomes, self.claims, self.reminders,
                                 self.erasures.collection)
        await self.reminders.create_index([("done", ASCENDING), ("due_at", ASCENDING)])
        await self.claims.create_index([("tenant_id", ASCENDING), ("consultant_id", ASCENDING), ("day", ASCENDING)])
        await self.tasks.create_index([("tenant_id", ASCENDING), ("consultant_id", ASCENDING), ("status", ASCENDING)])
        await self.tasks.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING)])
        await self.tasks.create_index([("tenant_id", ASCENDING), ("due_at", ASCENDING)])
        # The open-task recount and the agenda's sweep ask for open tasks of every tenant: on MongoDB this
        # answers them from the open tasks alone (covered, for the recount), however many have closed.
        await self.tasks.create_index([("status", ASCENDING), ("tenant_id", ASCENDING), ("queue", ASCENDING),
                                       ("consultant_id", ASCENDING)])
        await self.consultants.create_index([("tenant_id", ASCENDING), ("active", ASCENDING)])
        await self.outcomes.create_index([("tenant_id", ASCENDING), ("task_id", ASCENDING)])

    # ---- consultants -----------------------------------------------------------------------------
    async def upsert_consultant(self, tenant_id: str, consultant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        doc = await self.consultants.find_one_and_update(
            {"_id": _pid(tenant_id, consultant_id)},
            {"$set": {"tenant_id": tenant_id, "consultant_id": consultant_id, **fields}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )  # no projection: FerretDB v1 does not implement it for findAndModify
        doc.pop("_id")
        return doc

    async def consultants_with_load(self, tenant_id: str, today: date | None = None) -> list[Consultant]:
        """Active consultants with what routing weighs: load, today's assignments, leave, conversion."""
        docs = [d async for d in self.consultants.find({"tenant_id": tenant_id, "active": True})]
        closed = sum(d.get("closed", 0) for d in docs)
        mean = sum(d.get("converted", 0) for d in docs) / closed if closed else 0.0
        return [
            Consultant(
                d["consultant_id"], d.get("store_id") or "", True, d.get("capacity", 50), d.get("open_tasks", 0),
                region=d.get("region"), products=frozenset(d.get("products") or ()), skills=frozenset(d.get("skills") or ()),
                on_duty=d.get("on_duty", True), leave=frozenset(date.fromisoformat(x) for x in d.get("leave") or ()),
                manager=d.get("manager", False),
                conversion=(d.get("converted", 0) + CONVERSION_PRIOR * mean) / (d.get("closed", 0) + CONVERSION_PRIOR)
                if closed else None,
                assigned=d.get("assigned", 0) if today is not None and d.get("assigned_on") == today.isoformat() else 0,
            )
            for d in docs
        ]

    async def count_open_task(self, tenant_id: str, consultant_id: str, delta: int) -> None:
        await self.consultants.update_one({"_id": _pid(tenant_id, consultant_id)}, {"$inc": {"open_tasks": delta}})

    async def count_assignment(self, tenant_id: str, consultant_id: str, today: date) -> None:
        """The rotation's fairness counter: assignments on the tenant's local day."""
        pid = _pid(tenant_id, consultant_id)
        doc = await self.consultants.find_one({"_id": pid})
        if doc is None:
            return
        if doc.get("assigned_on") == today.isoformat():
            await self.consultants.update_one({"_id": pid}, {"$inc": {"assigned": 1}})
        else:
            await self.consultants.update_one({"_id": pid}, {"$set": {"assigned_on": today.isoformat(), "assigned": 1}})

    async def count_closed(self, tenant_id: str, consultant_id: str, converted: bool) -> None:
        await self.consultants.update_one({"_id": _pid(tenant_id, consultant_id)},
                                          {"$inc": {"closed": 1, "converted": int(converted)}})

    # ---- tasks and slots -------------------------------------------------------------------------
    async def slot(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        return await find_owned(self.slots, tenant_id, _pid(tenant_id, one_id))

    async def resolve(self, tenant_id: str, one_id: str) -> tuple[str, dict[str, Any] | None]:
        """The person `one_id` lives on as, following merges, and their slot."""
        return await follow(one_id, lambda o: self.slot(tenant_id, o), lambda slot: slot.get("merged_into"))

    async def create_task(self, doc: dict[str, Any]) -> bool:
        """Store a new task; False if it exists already (a replay)."""
        return await insert_once(self.tasks, doc)

    async def mark_announced(self, tenant_id: str, task_id: str) -> None:
        """The broker has the task's TaskCreated: a replay of the change that made it sends nothing."""
        if await find_owned(self.tasks, tenant_id, task_id) is not None:  # {_id} alone: see find_owned
            await self.tasks.update_one({"_id": task_id}, {"$set": {"announced": True}})

    async def take_slot(self, tenant_id: str, one_id: str, task_id: str) -> dict[str, Any] | None:
        """Name `task_id` the person's open task; returns the slot as it was (None: there was none)."""
        return await self._set_slot(tenant_id, one_id, {"open_task_id": task_id, "last_task_id": task_id})

    async def update_task(self, task_id: str, fields: dict[str, Any], push: dict[str, Any] | None = None) -> None:
        """Set fields of a task (by _id alone; the caller read it and checked the tenant)."""
        update: dict[str, Any] = {"$set": fields}
        if push:
            update["$push"] = push
        await self.tasks.update_one({"_id": task_id}, update)

    async def unset_task_fields(self, task_id: str, *names: str) -> None:
        await self.tasks.update_one({"_id": task_id}, {"$unset": dict.fromkeys(names, "")})

    # ---- the timer's sweeps (they scan; the agendas make them twice a day) -----------------------------
    async def waiting_tasks(self) -> list[dict[str, Any]]:
        """Open tasks nobody answered yet: the task agenda's sweep (when each is due is the domain's
        `next_look`)."""
        cursor = self.tasks.find({"status": TaskStatus.OPEN.value, "first_response_at": {"$exists": False}},
                                 {"event": 0, "lead_name": 0, "updates": 0, "escalations": 0, "assignments": 0})
        return [d async for d in cursor]

    async def reminders_due_until(self, until: datetime) -> list[tuple[str, str, datetime, str]]:
        """(tenant, reminder id, due, person) of the reminders not done and due by `until`: the sweep."""
        cursor = self.reminders.find({"done": False, "due_at": {"$lte": until}}, {"tenant_id": 1, "one_id": 1, "due_at": 1})
        return [(d["tenant_id"], d["_id"], d["due_at"], d["one_id"]) async for d in cursor]

    async def contacts_of(self, tenant_id: str, consultant_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Where to reach these consultants: WeCom userid and e-mail (by _id: FerretDB pushes that down)."""
        found = {}
        for cid in dict.fromkeys(consultant_ids):
            doc = await self.consultants.find_one({"_id": _pid(tenant_id, cid)})
            if doc is not None:
                found[cid] = {"wecom_userid": doc.get("wecom_userid"), "email": doc.get("email"), "name": doc.get("name")}
        return found

    async def open_task_counts(self) -> dict[tuple[str, str, str | None], int]:
        """Open tasks per tenant, queue and consultant (every tenant: the timer's gauge and the repair of
        the consultants' load; it scans, so it runs seldom)."""
        cursor = await self.tasks.aggregate([
            {"$match": {"status": TaskStatus.OPEN.value}},
            {"$group": {"_id": {"tenant": "$tenant_id", "queue": "$queue", "consultant": "$consultant_id"},
                        "n": {"$sum": 1}}},
        ])
        return {(d["_id"]["tenant"], d["_id"].get("queue") or "sales", d["_id"].get("consultant")): d["n"]
                async for d in cursor}

    async def repair_open_task_counts(self, counted: dict[tuple[str, str], int]) -> int:
        """Set each consultant's `open_tasks` to the count of their open tasks where the two differ.

        The load is kept by `$inc` as tasks open and close, and a worker killed between a task's insert
        and its increment skips the increment on the replay (the task exists): the count drifts low.
        This recount bounds the drift to one gauge period. Returns the consultants corrected."""
        fixed = 0
        async for doc in self.consultants.find({}, {"tenant_id": 1, "consultant_id": 1, "open_tasks": 1}):
            want = counted.get((doc["tenant_id"], doc["consultant_id"]), 0)
            if doc.get("open_tasks", 0) != want:
                await self.consultants.update_one({"_id": doc["_id"]}, {"$set": {"open_tasks": want}})
                fixed += 1
        return fixed

    async def managers_of(self, tenant_id: str, store_id: str | None) -> list[str]:
        if not store_id:
            return []
        cursor = self.consultants.find({"tenant_id": tenant_id, "store_id": store_id, "manager": True})
        return sorted([d["consultant_id"] async for d in cursor])

    async def tasks_since(self, tenant_id: str, since: datetime) -> list[dict[str, Any]]:
        cursor = self.tasks.find({"tenant_id": tenant_id, "created_at": {"$gte": since}},
                                 {"event": 0, "lead_name": 0})
        return [d async for d in cursor]

    # ---- repurchase reminders ------------------------------------------------------------------------
    async def set_reminder(self, doc: dict[str, Any]) -> None:
        """One reminder per person and product: a newer purchase replaces it; an older or the same one
        (a replay) changes nothing."""
        current = await self.reminders.find_one({"_id": doc["_id"]})
        if current is None or current["purchased_at"] < doc["purchased_at"]:
            await self.reminder_agenda.schedule(doc["tenant_id"], doc["_id"], doc["due_at"], person=doc["one_id"])
            await self.reminders.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def reminder(self, tenant_id: str, reminder_id: str) -> dict[str, Any] | None:
        return await find_owned(self.reminders, tenant_id, reminder_id)

    async def reminder_done(self, reminder_id: str, task_id: str, now: datetime) -> None:
        await self.reminders.update_one({"_id": reminder_id}, {"$set": {"done": True, "task_id": task_id, "done_at": now}})

    # ---- the shared pool (claims come from the API) ----------------------------------------------------
    async def claims_on(self, tenant_id: str, consultant_id: str, day: date) -> int:
        return await self.claims.count_documents({"tenant_id": tenant_id, "consultant_id": consultant_id,
                                                  "day": day.isoformat()})

    async def claim(self, tenant_id: str, task: dict[str, Any], consultant_id: str, day: date, now: datetime) -> bool:
        """Win the pooled task, or False if somebody else did: one claim per pooling, by its _id."""
        return await insert_once(self.claims, {
            "_id": f"{task['_id']}\x1f{task['pooled_at'].isoformat()}", "tenant_id": tenant_id, "task_id": task["_id"],
            "consultant_id": consultant_id, "day": day.isoformat(), "at": now})

    async def set_slot(self, tenant_id: str, one_id: str, open_task_id: str | None, also_open: list[str]) -> None:
        await self._set_slot(tenant_id, one_id, {"open_task_id": open_task_id, "also_open": also_open})

    async def bury_slot(self, tenant_id: str, loser: str, winner: str) -> dict[str, Any] | None:
        """The merged person's slot redirects to the winner; returns it as it was (with its open tasks)."""
        return await self._set_slot(tenant_id, loser, {"merged_into": winner})

    async def _set_slot(self, tenant_id: str, one_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        return await self.slots.find_one_and_update(
            {"_id": _pid(tenant_id, one_id)},
            {"$set": {"tenant_id": tenant_id, "one_id": one_id, **fields}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )  # no projection: FerretDB v1 does not implement it for findAndModify

    async def free_slot(self, tenant_id: str, one_id: str, task_id: str) -> None:
        slot = await self.slot(tenant_id, one_id)
        still_open = [t for t in open_task_ids(slot) if t != task_id]
        if slot is not None and len(still_open) < len(open_task_ids(slot)):
            await self.slots.update_one({"_id": _pid(tenant_id, one_id)}, {"$set": {
                "open_task_id": still_open[0] if still_open else None, "also_open": still_open[1:]}})

    async def move_task(self, task_id: str, one_id: str) -> None:
        await self.tasks.update_one({"_id": task_id}, {"$set": {"one_id": one_id}})  # the caller checked the tenant

    async def close_duplicate(self, task_id: str, kept_task_id: str, now: datetime) -> None:
        """Close an open task that duplicates `kept_task_id` after a merge (the caller saw it open)."""
        await self.tasks.update_one({"_id": task_id}, {"$set": {
            "status": TaskStatus.DONE.value, "closed_reason": DUPLICATE_AFTER_MERGE, "duplicate_of": kept_task_id,
            "closed_at": now, "updated_at": now}})

    # ---- erasure ---------------------------------------------------------------------------------
    async def is_erased(self, tenant_id: str, one_id: str) -> bool:
        return await self.erasures.is_erased(tenant_id, one_id)

    async def erase(self, tenant_id: str, one_ids: list[str], *, at: datetime,
                    uncount: Callable[[str], Awaitable[None]]) -> list[str]:
        """Delete the persons' tasks, outcomes and slots; `uncount` takes each open task off its
        consultant's load (the service counts under the consultant's lease). The markers go first, so an
        erasure that dies halfway leaves the persons marked and its replay deletes the rest; their score
        changes wait meanwhile (the erasure holds the persons' guard)."""
        await self.erasures.mark(tenant_id, one_ids, at)
        task_ids = [d["_id"] async for d in self.tasks.find({"tenant_id": tenant_id, "one_id": {"$in": one_ids}}, {"_id": 1})]
        for task_id in task_ids:
            gone = await self.tasks.find_one_and_delete({"_id": task_id})
            if gone and gone["status"] == TaskStatus.OPEN.value and gone.get("consultant_id"):
                await uncount(gone["consultant_id"])
        await self.outcomes.delete_many({"tenant_id": tenant_id, "one_id": {"$in": one_ids}})
        await self.claims.delete_many({"tenant_id": tenant_id, "task_id": {"$in": task_ids}})
        await self.reminders.delete_many({"tenant_id": tenant_id, "one_id": {"$in": one_ids}})
        for one_id in one_ids:
            await self.slots.delete_one({"_id": _pid(tenant_id, one_id)})
        await self.task_agenda.forget(tenant_id, one_ids)
        await self.reminder_agenda.forget(tenant_id, one_ids)
        return task_ids

    async def task(self, tenant_id: str, task_id: str) -> dict[str, Any] | None:
        return await find_owned(self.tasks, tenant_id, task_id)

    async def list_tasks(self, tenant_id: str, *, consultant_id: str | None, status: TaskStatus | None,
                         one_id: str | None = None, queue: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if queue == "sales":
            query["queue"] = {"$nin": ["verification", "collision", "manager", "pool"]}  # tasks from before queues are sales tasks
        elif queue:
            query["queue"] = queue
        if consultant_id:
            query["consultant_id"] = consultant_id
        if status:
            query["status"] = status.value
        if one_id:
            query["one_id"] = one_id
        cursor = self.tasks.find(query).sort([("due_at", ASCENDING), ("created_at", DESCENDING)]).limit(limit)
        return [doc async for doc in cursor]

    async def record_outcome(self, doc: dict[str, Any], *, close: bool, now: datetime) -> None:
        await insert_once(self.outcomes, doc)
        update: dict[str, Any] = {
            "$push": {"outcomes": {k: doc[k] for k in ("outcome_id", "outcome", "reason", "note", "recorded_at")}},
            "$set": {"last_outcome": doc["outcome"], "updated_at": now},
            "$min": {"first_response_at": now},
        }
        if close:
            update["$set"]["status"] = TaskStatus.DONE.value
        await self.tasks.update_one({"_id": doc["task_id"]}, update)  # the caller checked the tenant

    async def mark_outcome_published(self, outcome_id: str) -> None:
        await self.outcomes.update_one({"_id": outcome_id}, {"$set": {"published": True}})
