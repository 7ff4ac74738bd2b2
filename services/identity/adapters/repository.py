"""The identity store: the only writer of the identity_* collections.

Every hot-path read and write filters on `_id` alone and checks the tenant in code: FerretDB v1's
SQLite backend pushes only `_id` equality down to SQLite and scans the collection for anything else
(measured: 2-3 ms by _id against 30-160 ms for $in or secondary fields at a few hundred documents).
Inserts are preferred to updates for the same reason: FerretDB v1 inserts ~1,500 documents/s here
but updates ~300/s, so "emitted" is a marker document of its own, not a flag to flip.

identity_links    one document per identifier (by keyed hash): which person owns it. The unique _id is
                  what guarantees that an identifier resolves to exactly one person.
identity_persons  one document per one_id; `merged_into` points a merged person at its survivor.
identity_receipts one per touchpoint (tenant, event_id): its one_id and the merges it caused.
identity_emitted  one per touchpoint whose output the broker acknowledged.
identity_merges   the audit of merges, with cause and triggering event.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections, find_owned, insert_once
from services.identity.domain.stitching import Person

MAX_CHAIN = 64  # merged_into hops; a longer chain would be a bug, not data


class IdentityRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.links = db["identity_links"]
        self.persons = db["identity_persons"]
        self.receipts = db["identity_receipts"]
        self.emitted = db["identity_emitted"]
        self.merges = db["identity_merges"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.links, self.persons, self.receipts, self.emitted, self.merges)
        await self.links.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING)])
        await self.merges.create_index([("tenant_id", ASCENDING), ("event_id", ASCENDING)])
        await self.persons.create_index([("tenant_id", ASCENDING), ("merged_into", ASCENDING)])

    # ---- receipts --------------------------------------------------------------------------------
    @staticmethod
    def _receipt_id(tenant_id: str, event_id: str) -> str:
        return f"{tenant_id}\x1f{event_id}"

    async def receipt(self, tenant_id: str, event_id: str) -> dict[str, Any] | None:
        return await self.receipts.find_one({"_id": self._receipt_id(tenant_id, event_id)})

    async def was_emitted(self, tenant_id: str, event_id: str) -> bool:
        return await self.emitted.find_one({"_id": self._receipt_id(tenant_id, event_id)}) is not None

    async def save_receipt(
        self, tenant_id: str, event_id: str, one_id: str, merges: list[dict[str, Any]], now: datetime
    ) -> None:
        """Remember the outcome, merges included, so a replay can emit exactly the same messages."""
        await insert_once(self.receipts, {
            "_id": self._receipt_id(tenant_id, event_id),
            "tenant_id": tenant_id, "one_id": one_id, "merges": merges, "at": now,
        })

    async def mark_emitted(self, tenant_id: str, event_id: str) -> None:
        await insert_once(self.emitted, {"_id": self._receipt_id(tenant_id, event_id), "tenant_id": tenant_id})

    # ---- links -----------------------------------------------------------------------------------
    async def owners(self, tenant_id: str, key_hashes: list[str]) -> dict[str, str]:
        docs = await asyncio.gather(*(find_owned(self.links, tenant_id, k) for k in key_hashes))
        return {doc["_id"]: doc["one_id"] for doc in docs if doc}

    async def claim(self, tenant_id: str, key_hash: str, one_id: str, fields: dict[str, Any]) -> str:
        """Link the identifier to `one_id` unless somebody owns it already; return the owner.

        The unique _id decides races: the first insert wins, everybody else reads the winner.
        """
        if await insert_once(self.links, {"_id": key_hash, "tenant_id": tenant_id, "one_id": one_id, **fields}):
            return one_id
        doc = await self.links.find_one({"_id": key_hash})
        if doc is None or doc.get("tenant_id") != tenant_id:
            raise RuntimeError("identifier key taken by another tenant")  # an HMAC collision: a bug
        return doc["one_id"]

    async def repoint(self, tenant_id: str, loser: str, winner: str) -> None:
        await self.links.update_many(
            {"tenant_id": tenant_id, "one_id": loser}, {"$set": {"one_id": winner}}
        )

    async def resolve(self, tenant_id: str, key_hash: str) -> str | None:
        doc = await find_owned(self.links, tenant_id, key_hash)
        return await self.live_root(tenant_id, doc["one_id"]) if doc else None

    async def links_of(self, tenant_id: str, one_id: str) -> list[dict[str, Any]]:
        cursor = self.links.find({"tenant_id": tenant_id, "one_id": one_id}, {"enc": 0})
        return [doc async for doc in cursor.sort("linked_at", ASCENDING)]

    # ---- persons ---------------------------------------------------------------------------------
    async def ensure_person(self, tenant_id: str, one_id: str, now: datetime, event_id: str) -> None:
        await insert_once(self.persons, {
            "_id": one_id, "tenant_id": tenant_id, "created_at": now, "event_id": event_id, "merged_into": None,
        })

    async def drop_person(self, one_id: str) -> None:
        """Delete a person created for an event whose every claim another worker won (no link names it)."""
        await self.persons.delete_one({"_id": one_id})

    async def live_persons(self, tenant_id: str, one_ids: set[str]) -> dict[str, Person]:
        """Each one_id mapped to the living person it is (itself, or whom it was merged into)."""
        roots = await asyncio.gather(*(self._live_doc(tenant_id, o) for o in one_ids))
        return {o: Person(doc["_id"], doc["created_at"]) for o, doc in zip(one_ids, roots) if doc}

    async def live_root(self, tenant_id: str, one_id: str) -> str:
        """Follow merged_into to the surviving person."""
        doc = await self._live_doc(tenant_id, one_id)
        return doc["_id"] if doc else one_id

    async def _live_doc(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        current = one_id
        for _ in range(MAX_CHAIN):
            doc = await find_owned(self.persons, tenant_id, current)
            if not doc or not doc.get("merged_into"):
                return doc
            current = doc["merged_into"]
        raise RuntimeError("merged_into chain too long")

    async def person(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        return await find_owned(self.persons, tenant_id, one_id)

    # ---- merges ----------------------------------------------------------------------------------
    async def record_merge(self, doc: dict[str, Any]) -> None:
        await insert_once(self.merges, doc)

    async def mark_merged(self, tenant_id: str, loser: str, winner: str) -> None:
        await self.persons.update_one(
            {"_id": loser, "tenant_id": tenant_id, "merged_into": None}, {"$set": {"merged_into": winner}}
        )
