"""Ingest receipts: which (tenant, event_id) the API already accepted. The gateway is their only writer."""

from __future__ import annotations

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase


class ReceiptRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.receipts = db["ingest_receipts"]

    @staticmethod
    def _id(tenant_id: str, event_id: str) -> str:
        return f"{tenant_id}\x1f{event_id}"

    async def ensure_indexes(self) -> None:
        return None  # the _id is the key

    async def existing(self, tenant_id: str, event_ids: list[str]) -> set[str]:
        ids = [self._id(tenant_id, e) for e in event_ids]
        cursor = self.receipts.find({"_id": {"$in": ids}}, {"event_id": 1})
        return {doc["event_id"] async for doc in cursor}

    async def record(self, tenant_id: str, event_ids: list[str], now: datetime) -> None:
        for event_id in event_ids:
            await self.receipts.update_one(
                {"_id": self._id(tenant_id, event_id)},
                {"$setOnInsert": {"tenant_id": tenant_id, "event_id": event_id, "accepted_at": now}},
                upsert=True,
            )
