"""The push outbox and the in-app inbox: the only writer of `task_pushes` (one document per push: its
`_id` is the push id of a task version and channel, so a replayed change never queues it twice) and
`inbox` (a consultant's in-app messages; storing one is delivering it), and `push_agenda`: the pushes
waiting to go out, which the delivery timer (every 2 s) reads instead of scanning every push ever
queued (`leadflow/runtime/agenda.py`; an entry lives from the queueing to the last attempt).

A push is marked `sending` before it goes out. A worker that dies mid-send leaves it so, and it is never
sent again: at most once per task version and channel, even across crashes (receivers also get the push
id, so the webhook and e-mail can drop a duplicate of their own)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.agenda import Agenda
from leadflow.runtime.ownership import Owns, everything
from leadflow.runtime.store import ensure_collections, find_owned, insert_once
from services.notify.domain.delivery import Delivery, DeliveryStatus, Push

SENDING = "sending"
QUEUEING = timedelta(minutes=1)  # how long an entry may wait for the push `enqueue` writes after it
WAITING = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)


class PushOutbox:
    def __init__(self, db: AsyncDatabase) -> None:
        self.pushes = db["task_pushes"]
        self.inbox = db["inbox"]
        self.agenda = Agenda(db["push_agenda"])  # keyed and owned by the push id

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.pushes, self.inbox)
        await self.agenda.ensure_indexes()
        await self.pushes.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.inbox.create_index([("tenant_id", ASCENDING), ("consultant_id", ASCENDING), ("at", DESCENDING)])

    async def enqueue(self, push: Push, consultant_id: str | None, now: datetime) -> bool:
        await self.agenda.schedule(push.tenant_id, push.push_id, now)
        return await insert_once(self.pushes, {
            "_id": push.push_id, "tenant_id": push.tenant_id, "task_id": push.task_id, "task_version": push.task_version,
            "channel": push.channel, "recipient": push.recipient, "consultant_id": consultant_id, "title": push.title,
            "body": push.body, "url": push.url, "payload": dict(push.payload), "status": DeliveryStatus.PENDING.value,
            "attempts": 0, "next_attempt_at": now, "created_at": now,
        })

    async def due(self, now: datetime, limit: int, owns: Owns = everything) -> list[dict[str, Any]]:
        """The pushes of this worker (`owns`, by push id) due to go out, from the agenda; entries of pushes
        no longer waiting are dropped, those deferred follow their push."""
        # Pushes queued before the agenda existed; then twice a day. Not on a partition gain: only `enqueue`
        # makes a push due sooner, and it writes the entry first.
        if await self.agenda.sweep_needed(now):
            cursor = self.pushes.find({"status": {"$in": WAITING}}, {"tenant_id": 1, "next_attempt_at": 1})
            await self.agenda.swept([(d["tenant_id"], d["_id"], d["next_attempt_at"]) async for d in cursor], now)
        due = []
        for entry in await self.agenda.due(now, limit):
            if not owns(entry.owner):
                continue
            doc = await find_owned(self.pushes, entry.tenant_id, entry.key)
            if doc is not None and doc["status"] in WAITING and doc["next_attempt_at"] <= now:
                due.append(doc)
            elif doc is None and entry.due_at > now - QUEUEING:
                # Its `enqueue` may be between the entry and the push (this timer takes no lease): look
                # again next run. An entry whose push never came goes once that is past.
                continue
            else:
                waiting = doc is not None and doc["status"] in WAITING
                await self.agenda.settle(entry, doc["next_attempt_at"] if waiting else None, now)
        return due

    async def mark_sending(self, push_id: str, now: datetime) -> None:
        await self.pushes.update_one({"_id": push_id}, {"$set": {"status": SENDING, "sending_since": now}})

    async def defer(self, push: Push, until: datetime, why: str) -> None:
        """Not now (quiet hours, the consultant's hourly limit): due again at `until`, no attempt counted."""
        await self.agenda.schedule(push.tenant_id, push.push_id, until)
        await self.pushes.update_one({"_id": push.push_id}, {"$set": {"next_attempt_at": until, "deferred": why}})

    async def sent_since(self, tenant_id: str, consultant_id: str, since: datetime) -> int:
        """Pushes sent to a consultant on their own channels (WeCom, e-mail) since a time."""
        return await self.pushes.count_documents({"tenant_id": tenant_id, "consultant_id": consultant_id,
                                                  "channel": {"$in": ["wecom", "email"]},
                                                  "status": DeliveryStatus.SENT.value, "updated_at": {"$gte": since}})

    async def record(self, push: Push, delivery: Delivery, now: datetime) -> None:
        """The attempt's result: a retry is due again at its back-off, anything else leaves the agenda
        (after the push is written, so a crash in between leaves an entry the next look drops)."""
        if delivery.status.value in WAITING:
            await self.agenda.schedule(push.tenant_id, push.push_id, delivery.next_attempt_at)
        await self.pushes.update_one({"_id": push.push_id}, {"$set": {
            "status": delivery.status.value, "attempts": delivery.attempts, "next_attempt_at": delivery.next_attempt_at,
            "last_detail": delivery.last_detail, "updated_at": now}})
        if delivery.status.value not in WAITING:
            await self.agenda.drop(push.tenant_id, push.push_id)

    async def of_task(self, tenant_id: str, task_id: str) -> list[dict[str, Any]]:
        cursor = self.pushes.find({"tenant_id": tenant_id, "task_id": task_id},
                                  {"_id": 1, "channel": 1, "task_version": 1, "status": 1, "attempts": 1,
                                   "last_detail": 1, "consultant_id": 1})
        return [d async for d in cursor]

    # ---- the in-app inbox ----------------------------------------------------------------------------
    async def store_in_inbox(self, push: Push, consultant_id: str, now: datetime) -> None:
        await insert_once(self.inbox, {"_id": push.push_id, "tenant_id": push.tenant_id, "consultant_id": consultant_id,
                                       "task_id": push.task_id, "title": push.title, "body": push.body, "url": push.url,
                                       "at": now, "read": False})

    async def inbox_of(self, tenant_id: str, consultant_id: str, limit: int = 50) -> list[dict[str, Any]]:
        cursor = self.inbox.find({"tenant_id": tenant_id, "consultant_id": consultant_id})
        return [d async for d in cursor.sort("at", DESCENDING).limit(limit)]

    async def erase_tasks(self, tenant_id: str, task_ids: list[str]) -> None:
        async for doc in self.pushes.find({"tenant_id": tenant_id, "task_id": {"$in": task_ids},
                                           "status": {"$in": WAITING}}, {"_id": 1}):
            await self.agenda.drop(tenant_id, doc["_id"])
        await self.pushes.delete_many({"tenant_id": tenant_id, "task_id": {"$in": task_ids}})
        await self.inbox.delete_many({"tenant_id": tenant_id, "task_id": {"$in": task_ids}})
