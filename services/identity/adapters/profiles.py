"""The matching store: profiles, blocks and the review queue (the identity service is the only writer).

identity_profiles  one per person that gave a name: the profile, Fernet-encrypted; its block hashes;
                   a digest to tell whether anything new arrived.
identity_blocks    one per (tenant, blocking key hash): the one_ids whose profiles share the key.
                   Looked up by _id only; a block grown past MAX_BLOCK is too common to compare on.
                   Namesakes stitched by different workers join one block at once, and FerretDB v1
                   applies `$addToSet` and `$pull` as a read and a write: members change under the
                   block's lease (identity's leases, key `block` + hash).
identity_reviews   one per candidate pair in the grey band, `_id` = tenant + both one_ids sorted, so a
                   pair is queued once and a rejected pair is never proposed again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.leases import PersonLeases
from leadflow.runtime.store import ensure_collections, find_owned, insert_once

MAX_BLOCK = 200


def pair_id(tenant_id: str, a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"{tenant_id}\x1f{first}\x1f{second}"


def review_id(a: str, b: str) -> str:
    """The id the API shows for a pair: both one_ids, sorted, joined by a dot."""
    return ".".join(sorted((a, b)))


def _block_lease(block: str) -> str:
    return f"block\x1f{block}"


class ProfileRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.profiles = db["identity_profiles"]
        self.blocks = db["identity_blocks"]
        self.reviews = db["identity_reviews"]
        self.leases = PersonLeases(db)

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.profiles, self.blocks, self.reviews)
        await self.reviews.create_index([("tenant_id", ASCENDING), ("status", ASCENDING), ("at", DESCENDING)])

    # ---- profiles --------------------------------------------------------------------------------
    async def profile(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        return await find_owned(self.profiles, tenant_id, f"{tenant_id}\x1f{one_id}")

    async def profiles_of(self, tenant_id: str, one_ids: list[str]) -> dict[str, dict[str, Any]]:
        docs = await asyncio.gather(*(self.profile(tenant_id, o) for o in one_ids))
        return {doc["one_id"]: doc for doc in docs if doc}

    async def save_profile(self, tenant_id: str, one_id: str, body: dict[str, Any]) -> None:
        doc = {"_id": f"{tenant_id}\x1f{one_id}", "tenant_id": tenant_id, "one_id": one_id, **body}
        await self.profiles.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    # ---- blocks ----------------------------------------------------------------------------------
    async def join_block(self, tenant_id: str, block: str, one_id: str) -> list[str] | None:
        """Add the person to the block; its members, or None when the block is too common to use."""
        block_id = f"{tenant_id}\x1f{block}"
        doc = await find_owned(self.blocks, tenant_id, block_id)
        if doc is None:
            if await insert_once(self.blocks, {"_id": block_id, "tenant_id": tenant_id, "members": [one_id]}):
                return [one_id]
            doc = await find_owned(self.blocks, tenant_id, block_id) or {"members": []}
        members = doc.get("members", [])
        if len(members) >= MAX_BLOCK:
            return None
        if one_id not in members:
            async with self.leases.held(tenant_id, [_block_lease(block)]):
                await self.blocks.update_one({"_id": block_id}, {"$addToSet": {"members": one_id}})
        return members

    async def leave_blocks(self, tenant_id: str, blocks: list[str], one_ids: list[str]) -> None:
        """Remove the persons from the blocks, and a block left empty altogether (its key is theirs)."""
        for block in blocks:
            block_id = f"{tenant_id}\x1f{block}"
            async with self.leases.held(tenant_id, [_block_lease(block)]):
                for one_id in one_ids:  # FerretDB v1's $pull takes values, not conditions such as $in
                    await self.blocks.update_one({"_id": block_id}, {"$pull": {"members": one_id}})
                doc = await find_owned(self.blocks, tenant_id, block_id)
                if doc is not None and not doc.get("members"):
                    await self.blocks.delete_one({"_id": block_id})

    # ---- reviews ---------------------------------------------------------------------------------
    async def queue_review(self, tenant_id: str, a: str, b: str, body: dict[str, Any]) -> bool:
        return await insert_once(self.reviews, {"_id": pair_id(tenant_id, a, b), "tenant_id": tenant_id,
                                                "a": a, "b": b, "status": "open", **body})

    async def review(self, tenant_id: str, public_id: str) -> dict[str, Any] | None:
        a, dot, b = public_id.partition(".")
        return await find_owned(self.reviews, tenant_id, pair_id(tenant_id, a, b)) if dot else None

    async def close_review(self, review_id: str, status: str, by: str, at: datetime) -> None:
        await self.reviews.update_one({"_id": review_id}, {"$set": {"status": status, "decided_by": by, "decided_at": at}})

    async def open_reviews(self, tenant_id: str, limit: int) -> list[dict[str, Any]]:
        cursor = self.reviews.find({"tenant_id": tenant_id, "status": "open"})
        return [doc async for doc in cursor.sort("score", DESCENDING).limit(limit)]

    # ---- erasure ---------------------------------------------------------------------------------
    async def forget(self, tenant_id: str, one_ids: list[str]) -> None:
        """Delete the profiles of these persons, their block memberships and their review items."""
        docs = await self.profiles_of(tenant_id, one_ids)
        for doc in docs.values():
            await self.leave_blocks(tenant_id, doc.get("blocks", []), one_ids)
            await self.profiles.delete_one({"_id": doc["_id"]})
        await self.reviews.delete_many({"tenant_id": tenant_id, "$or": [{"a": {"$in": one_ids}}, {"b": {"$in": one_ids}}]})
