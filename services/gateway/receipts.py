"""Ingest receipts: which (tenant, event_id) the API already accepted. The gateway is their only writer."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections, insert_all_once


class ReceiptRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.receipts = db["ingest_receipts"]

    @staticmethod
    def _id(tenant_id: str, event_id: str) -> str:
        return f"{tenant_id}\x1f{event_id}"

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.receipts)  # the _id is the key; no other index

    async def existing(self, tenant_id: str, event_ids: list[str]) -> set[str]:
        # One find by _id each, concurrently: FerretDB v1 scans the collection for an $in.
        docs = await asyncio.gather(*(self.receipts.find_one({"_id": self._id(tenant_id, e)}) for e in event_ids))
        return {doc["event_id"] for doc in docs if doc}

    async def record(self, tenant_id: str, event_ids: list[str], now: datetime) -> None:
        # One unordered insert for the batch: a receipt already there (a retried request) fails alone.
        await insert_all_once(self.receipts, [{"_id": self._id(tenant_id, e), "tenant_id": tenant_id, "event_id": e,
                                               "accepted_at": now} for e in event_ids])
