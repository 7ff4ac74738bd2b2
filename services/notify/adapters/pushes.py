"""The push outbox and the in-app inbox: the only writer of `task_pushes` (one document per push: its
`_id` is the push id of a task version and channel, so a replayed change never queues it twice) and
`inbox` (a consultant's in-app messages; storing one is delivering it).

A push is marked `sending` before it goes out. A worker that dies mid-send leaves it so, and it is never
sent again: at most once per task version and channel, even across crashes (receivers also get the push
id, so the webhook and e-mail can drop a duplicate of their own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections, insert_once
from services.notify.domain.delivery import Delivery, DeliveryStatus, Push

SENDING = "sending"


class PushOutbox:
    def __init__(self, db: AsyncDatabase) -> None:
        self.pushes = db["task_pushes"]
        self.inbox = db["inbox"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.pushes, self.inbox)
        await self.pushes.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.inbox.create_index([("tenant_id", ASCENDING), ("consultant_id", ASCENDING), ("at", DESCENDING)])

    async def enqueue(self, push: Push, consultant_id: str | None, now: datetime) -> bool:
        return await insert_once(self.pushes, {
            "_id": push.push_id, "tenant_id": push.tenant_id, "task_id": push.task_id, "task_version": push.task_version,
            "channel": push.channel, "recipient": push.recipient, "consultant_id": consultant_id, "title": push.title,
            "body": push.body, "url": push.url, "payload": dict(push.payload), "status": DeliveryStatus.PENDING.value,
            "attempts": 0, "next_attempt_at": now, "created_at": now,
        })

    async def due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        cursor = self.pushes.find({"status": {"$in": [DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value]},
                                   "next_attempt_at": {"$lte": now}})
        return [d async for d in cursor.limit(limit)]

    async def mark_sending(self, push_id: str, now: datetime) -> None:
        await self.pushes.update_one({"_id": push_id}, {"$set": {"status": SENDING, "sending_since": now}})

    async def defer(self, push_id: str, until: datetime, why: str) -> None:
        """Not now (quiet hours, the consultant's hourly limit): due again at `until`, no attempt counted."""
        await self.pushes.update_one({"_id": push_id}, {"$set": {"next_attempt_at": until, "deferred": why}})

    async def sent_since(self, tenant_id: str, consultant_id: str, since: datetime) -> int:
        """Pushes sent to a consultant on their own channels (WeCom, e-mail) since a time."""
        return await self.pushes.count_documents({"tenant_id": tenant_id, "consultant_id": consultant_id,
                                                  "channel": {"$in": ["wecom", "email"]},
                                                  "status": DeliveryStatus.SENT.value, "updated_at": {"$gte": since}})

    async def record(self, push_id: str, delivery: Delivery, now: datetime) -> None:
        await self.pushes.update_one({"_id": push_id}, {"$set": {
            "status": delivery.status.value, "attempts": delivery.attempts, "next_attempt_at": delivery.next_attempt_at,
            "last_detail": delivery.last_detail, "updated_at": now}})

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
        await self.pushes.delete_many({"tenant_id": tenant_id, "task_id": {"$in": task_ids}})
        await self.inbox.delete_many({"tenant_id": tenant_id, "task_id": {"$in": task_ids}})
