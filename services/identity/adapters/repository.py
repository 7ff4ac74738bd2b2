"""The identity store: the only writer of the identity_* collections.

identity_links    one document per identifier (by keyed hash): which person owns it. The unique _id is
                  what guarantees that an identifier resolves to exactly one person.
identity_persons  one document per one_id; `merged_into` points a merged person at its survivor.
identity_receipts one per touchpoint (tenant, event_id): its one_id, and whether it was emitted.
identity_merges   the audit of merges, with cause and triggering event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.identity.domain.stitching import Person

MAX_CHAIN = 64  # merged_into hops; a longer chain would be a bug, not data


class IdentityRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.links = db["identity_links"]
        self.persons = db["identity_persons"]
        self.receipts = db["identity_receipts"]
        self.merges = db["identity_merges"]

    async def ensure_indexes(self) -> None:
        await self.links.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING)])
        await self.merges.create_index([("tenant_id", ASCENDING), ("event_id", ASCENDING)])
        await self.persons.create_index([("tenant_id", ASCENDING), ("merged_into", ASCENDING)])

    # ---- receipts --------------------------------------------------------------------------------
    @staticmethod
    def _receipt_id(tenant_id: str, event_id: str) -> str:
        return f"{tenant_id}\x1f{event_id}"

    async def receipt(self, tenant_id: str, event_id: str) -> dict[str, Any] | None:
        return await self.receipts.find_one({"_id": self._receipt_id(tenant_id, event_id)})

    async def save_receipt(self, tenant_id: str, event_id: str, one_id: str, now: datetime) -> None:
        await self.receipts.update_one(
            {"_id": self._receipt_id(tenant_id, event_id)},
            {"$setOnInsert": {"tenant_id": tenant_id, "one_id": one_id, "emitted": False, "at": now}},
            upsert=True,
        )

    async def mark_emitted(self, tenant_id: str, event_id: str) -> None:
        await self.receipts.update_one(
            {"_id": self._receipt_id(tenant_id, event_id)}, {"$set": {"emitted": True}}
        )

    # ---- links -----------------------------------------------------------------------------------
    async def owners(self, tenant_id: str, key_hashes: list[str]) -> dict[str, str]:
        cursor = self.links.find({"_id": {"$in": key_hashes}, "tenant_id": tenant_id}, {"one_id": 1})
        return {doc["_id"]: doc["one_id"] async for doc in cursor}

    async def claim(self, tenant_id: str, key_hash: str, one_id: str, fields: dict[str, Any]) -> str:
        """Link the identifier to `one_id` unless somebody owns it already; return the owner."""
        for _ in range(3):
            try:
                doc = await self.links.find_one_and_update(
                    {"_id": key_hash},
                    {"$setOnInsert": {"tenant_id": tenant_id, "one_id": one_id, **fields}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                return doc["one_id"]
            except DuplicateKeyError:
                continue  # two upserts raced on the unique _id; the loser reads the winner's link
        raise RuntimeError("identifier claim did not settle")

    async def repoint(self, tenant_id: str, loser: str, winner: str) -> None:
        await self.links.update_many(
            {"tenant_id": tenant_id, "one_id": loser}, {"$set": {"one_id": winner}}
        )

    async def resolve(self, tenant_id: str, key_hash: str) -> str | None:
        doc = await self.links.find_one({"_id": key_hash, "tenant_id": tenant_id}, {"one_id": 1})
        return await self.live_root(tenant_id, doc["one_id"]) if doc else None

    async def links_of(self, tenant_id: str, one_id: str) -> list[dict[str, Any]]:
        cursor = self.links.find({"tenant_id": tenant_id, "one_id": one_id}, {"enc": 0})
        return [doc async for doc in cursor.sort("linked_at", ASCENDING)]

    # ---- persons ---------------------------------------------------------------------------------
    async def ensure_person(self, tenant_id: str, one_id: str, now: datetime, event_id: str) -> None:
        await self.persons.update_one(
            {"_id": one_id},
            {"$setOnInsert": {"tenant_id": tenant_id, "created_at": now, "event_id": event_id, "merged_into": None}},
            upsert=True,
        )

    async def drop_unused_person(self, tenant_id: str, one_id: str) -> None:
        if not await self.links.find_one({"tenant_id": tenant_id, "one_id": one_id}, {"_id": 1}):
            await self.persons.delete_one({"_id": one_id, "tenant_id": tenant_id, "merged_into": None})

    async def live_persons(self, tenant_id: str, one_ids: set[str]) -> list[Person]:
        roots = {await self.live_root(tenant_id, o) for o in one_ids}
        cursor = self.persons.find({"_id": {"$in": list(roots)}, "tenant_id": tenant_id})
        return [Person(doc["_id"], doc["created_at"]) async for doc in cursor]

    async def live_root(self, tenant_id: str, one_id: str) -> str:
        """Follow merged_into to the surviving person."""
        current = one_id
        for _ in range(MAX_CHAIN):
            doc = await self.persons.find_one({"_id": current, "tenant_id": tenant_id}, {"merged_into": 1})
            if not doc or not doc.get("merged_into"):
                return current
            current = doc["merged_into"]
        raise RuntimeError("merged_into chain too long")

    async def person(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        return await self.persons.find_one({"_id": one_id, "tenant_id": tenant_id})

    # ---- merges ----------------------------------------------------------------------------------
    async def record_merge(self, doc: dict[str, Any]) -> None:
        await self.merges.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)

    async def mark_merged(self, tenant_id: str, loser: str, winner: str) -> None:
        await self.persons.update_one(
            {"_id": loser, "tenant_id": tenant_id, "merged_into": None}, {"$set": {"merged_into": winner}}
        )

    async def merges_for_event(self, tenant_id: str, event_id: str) -> list[dict[str, Any]]:
        cursor = self.merges.find({"tenant_id": tenant_id, "event_id": event_id})
        return [doc async for doc in cursor]
