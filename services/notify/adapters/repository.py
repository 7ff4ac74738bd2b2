"""The notify store: the only writer of `consultants`, `tasks`, `task_slots` (the one open task of a
person) and `task_outcomes`.

Hot-path filters are `{_id: …}` alone (FerretDB v1 scans for anything else); consultants carry an
`open_tasks` counter so routing needs no count over tasks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections, find_owned, insert_once
from schemas.tasks import TaskStatus
from services.notify.domain.tasks import Consultant


def _pid(tenant_id: str, one_id: str) -> str:
    return f"{tenant_id}\x1f{one_id}"


class NotifyRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.consultants = db["consultants"]
        self.tasks = db["tasks"]
        self.slots = db["task_slots"]
        self.outcomes = db["task_outcomes"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.consultants, self.tasks, self.slots, self.outcomes)
        await self.tasks.create_index([("tenant_id", ASCENDING), ("consultant_id", ASCENDING), ("status", ASCENDING)])
        await self.tasks.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING)])
        await self.tasks.create_index([("tenant_id", ASCENDING), ("due_at", ASCENDING)])
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

    async def consultants_with_load(self, tenant_id: str) -> list[Consultant]:
        cursor = self.consultants.find({"tenant_id": tenant_id, "active": True})
        return [
            Consultant(d["consultant_id"], d.get("store_id") or "", True, d.get("capacity", 50), d.get("open_tasks", 0))
            async for d in cursor
        ]

    async def count_open_task(self, tenant_id: str, consultant_id: str, delta: int) -> None:
        await self.consultants.update_one({"_id": _pid(tenant_id, consultant_id)}, {"$inc": {"open_tasks": delta}})

    # ---- tasks -----------------------------------------------------------------------------------
    async def open_task_id(self, tenant_id: str, one_id: str) -> str | None:
        doc = await self.slots.find_one({"_id": _pid(tenant_id, one_id)})
        return doc.get("open_task_id") if doc else None

    async def create_task(self, doc: dict[str, Any]) -> bool:
        """Store a new task; False if it exists already (a replay)."""
        return await insert_once(self.tasks, doc)

    async def take_slot(self, tenant_id: str, one_id: str, task_id: str) -> None:
        await self.slots.update_one(
            {"_id": _pid(tenant_id, one_id)},
            {"$set": {"tenant_id": tenant_id, "one_id": one_id, "open_task_id": task_id}},
            upsert=True,
        )

    async def free_slot(self, tenant_id: str, one_id: str, task_id: str) -> None:
        if await self.open_task_id(tenant_id, one_id) == task_id:
            await self.slots.update_one({"_id": _pid(tenant_id, one_id)}, {"$set": {"open_task_id": None}})

    async def task(self, tenant_id: str, task_id: str) -> dict[str, Any] | None:
        return await find_owned(self.tasks, tenant_id, task_id)

    async def list_tasks(self, tenant_id: str, *, consultant_id: str | None, status: TaskStatus | None,
                         one_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
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
