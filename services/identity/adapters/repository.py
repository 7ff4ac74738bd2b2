"""The identity store: the only writer of the identity_* collections.

Every hot-path read and write filters on `_id` alone and checks the tenant in code: FerretDB v1's
SQLite backend pushes only `_id` equality down to SQLite and scans the collection for anything else.
Scans are left to rare ops work (split, erasure, listings), where MongoDB has indexes for them.

identity_links     one document per identifier (by keyed hash): the person it was linked to, why
                   (`cause`: first seen, or co-occurring `via` another identifier, or moved by a
                   split), its encrypted value, and hub bookkeeping. The unique _id guarantees that an
                   identifier belongs to exactly one person.
identity_persons   one document per one_id: `members` {link id: type} (an index of its identifiers,
                   kept as a hint: links are the truth), `absorbed` (one_ids merged into it).
identity_merges    one document per merged person, `_id` = tenant + loser: inserting it is the
                   compare-and-set that merges, so a person is merged into exactly one other.
identity_receipts  one per touchpoint: its one_id, the merges it caused, the links it used.
identity_attempts  one per touchpoint whose stitching began: a second attempt knows to recover.
identity_emitted   one per touchpoint whose output the broker acknowledged.
identity_conflicts one per touchpoint a guardrail held identifiers back from, with the reason.
identity_commands  one per ops command carried out, with the events it emitted (replays re-emit them).
identity_tenants   one per tenant: how many persons it has (about), for the matching prior.

Membership protocol (why a person's `members` stays complete without transactions): a merge first
inserts its merge document, then reads the loser's members and copies them to the winner. A claim
first writes the new member into its person, then looks for that person's merge document and, if
there is one, writes the member into the survivor too. Whichever runs first, the survivor ends up
with the member.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from leadflow.runtime.store import ensure_collections, find_owned, insert_once
from services.identity.domain.stitching import Person

MAX_CHAIN = 64  # merge hops; a longer chain would be a bug, not data
SEEN_WITH_KEPT = 32


def _pair(tenant_id: str, name: str) -> str:
    return f"{tenant_id}\x1f{name}"


class IdentityRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.links = db["identity_links"]
        self.persons = db["identity_persons"]
        self.receipts = db["identity_receipts"]
        self.emitted = db["identity_emitted"]
        self.attempts = db["identity_attempts"]
        self.merges = db["identity_merges"]
        self.conflicts = db["identity_conflicts"]
        self.commands = db["identity_commands"]
        self.tenants = db["identity_tenants"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(
            self.links, self.persons, self.receipts, self.emitted, self.attempts, self.merges, self.conflicts,
            self.commands, self.tenants,
        )
        # For ops reads and erasure only; the stream never filters on anything but _id.
        await self.links.create_index([("tenant_id", ASCENDING), ("status", ASCENDING)])
        await self.receipts.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING)])
        await self.merges.create_index([("tenant_id", ASCENDING), ("winner", ASCENDING)])
        await self.conflicts.create_index([("tenant_id", ASCENDING), ("at", DESCENDING)])

    # ---- receipts --------------------------------------------------------------------------------
    async def receipt(self, tenant_id: str, event_id: str) -> dict[str, Any] | None:
        return await self.receipts.find_one({"_id": _pair(tenant_id, event_id)})

    async def was_emitted(self, tenant_id: str, event_id: str) -> bool:
        return await self.emitted.find_one({"_id": _pair(tenant_id, event_id)}) is not None

    async def begin(self, tenant_id: str, event_id: str) -> bool:
        """Mark that stitching of this touchpoint begins; False if an earlier attempt began it."""
        return await insert_once(self.attempts, {"_id": _pair(tenant_id, event_id), "tenant_id": tenant_id})

    async def save_receipt(self, tenant_id: str, event_id: str, body: dict[str, Any]) -> None:
        """Remember the outcome, merges included, so a replay emits exactly the same messages."""
        await insert_once(self.receipts, {"_id": _pair(tenant_id, event_id), "tenant_id": tenant_id, **body})

    async def mark_emitted(self, tenant_id: str, event_id: str) -> None:
        await insert_once(self.emitted, {"_id": _pair(tenant_id, event_id), "tenant_id": tenant_id})

    async def receipts_of(self, tenant_id: str, one_ids: list[str]) -> list[dict[str, Any]]:
        cursor = self.receipts.find({"tenant_id": tenant_id, "one_id": {"$in": one_ids}})
        return [doc async for doc in cursor]

    async def reassign_receipts(self, receipt_ids: list[str], one_id: str) -> None:
        for receipt_id in receipt_ids:
            await self.receipts.update_one({"_id": receipt_id}, {"$set": {"one_id": one_id}})

    # ---- links -----------------------------------------------------------------------------------
    async def links_by_key(self, tenant_id: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        docs = await asyncio.gather(*(find_owned(self.links, tenant_id, k) for k in keys))
        return {doc["_id"]: doc for doc in docs if doc}

    async def claim(self, tenant_id: str, key: str, one_id: str, fields: dict[str, Any]) -> str:
        """Link the identifier to `one_id` unless somebody owns it already; return the owner.

        The unique _id decides races: the first insert wins, everybody else reads the winner.
        """
        doc = {"_id": key, "tenant_id": tenant_id, "one_id": one_id, "status": "active", **fields}
        if await insert_once(self.links, doc):
            return one_id
        found = await self.links.find_one({"_id": key})
        if found is None or found.get("tenant_id") != tenant_id:
            raise RuntimeError("identifier key taken by another tenant")  # an HMAC collision: a bug
        return found["one_id"]

    async def move_link(self, tenant_id: str, key: str, one_id: str, cause: dict[str, Any]) -> None:
        await self.links.update_one({"_id": key}, {"$set": {"one_id": one_id, "cause": cause}})

    async def seen_with(self, tenant_id: str, key: str, one_id: str) -> list[str]:
        """Note that the identifier came with a person it could not join; the distinct persons so far."""
        await self.links.update_one({"_id": key}, {"$addToSet": {"seen_with": one_id}})
        doc = await find_owned(self.links, tenant_id, key)
        return list(doc.get("seen_with", ())) if doc else []

    async def quarantine(self, tenant_id: str, key: str, now: datetime) -> None:
        await self.links.update_one({"_id": key}, {"$set": {"status": "quarantined", "quarantined_at": now}})

    async def quarantined(self, tenant_id: str, limit: int) -> list[dict[str, Any]]:
        cursor = self.links.find({"tenant_id": tenant_id, "status": "quarantined"}, {"enc": 0})
        return [doc async for doc in cursor.sort("quarantined_at", DESCENDING).limit(limit)]

    async def delete_links(self, keys: list[str]) -> None:
        if keys:
            await self.links.delete_many({"_id": {"$in": keys}})

    # ---- persons ---------------------------------------------------------------------------------
    async def create_person(self, tenant_id: str, one_id: str, created_at: datetime, event_id: str,
                            **extra: Any) -> None:
        created = await insert_once(self.persons, {
            "_id": one_id, "tenant_id": tenant_id, "created_at": created_at, "event_id": event_id,
            "members": {}, "absorbed": [], "merged_into": None, **extra,
        })
        if created:  # an estimate (persons later merged or dropped still count): it sets matching's prior
            try:
                await self.tenants.update_one({"_id": tenant_id}, {"$inc": {"persons": 1}}, upsert=True)
            except DuplicateKeyError:  # two first persons of a tenant at once: the document exists now
                await self.tenants.update_one({"_id": tenant_id}, {"$inc": {"persons": 1}})

    async def persons_in_tenant(self, tenant_id: str) -> int:
        doc = await self.tenants.find_one({"_id": tenant_id})
        return int(doc.get("persons", 0)) if doc else 0

    async def drop_person_if_empty(self, tenant_id: str, one_id: str) -> None:
        """Delete a person created for a touchpoint that ended up joining somebody else."""
        doc = await find_owned(self.persons, tenant_id, one_id)
        if doc is not None and not doc.get("members") and not doc.get("absorbed"):
            await self.persons.delete_one({"_id": one_id})

    async def person(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        return await find_owned(self.persons, tenant_id, one_id)

    async def add_members(self, tenant_id: str, one_id: str, members: dict[str, str]) -> None:
        """Record new members on the person and, if it has been merged meanwhile, on its survivor."""
        await self.persons.update_one({"_id": one_id}, {"$set": {f"members.{k}": t for k, t in members.items()}})
        root = await self.root(tenant_id, one_id)
        if root != one_id:
            await self.persons.update_one({"_id": root}, {"$set": {f"members.{k}": t for k, t in members.items()}})

    async def remove_members(self, one_id: str, keys: list[str]) -> None:
        await self.persons.update_one({"_id": one_id}, {"$unset": {f"members.{k}": "" for k in keys}})

    async def root(self, tenant_id: str, one_id: str) -> str:
        """Follow merges to the surviving person."""
        current = one_id
        for _ in range(MAX_CHAIN):
            merge = await find_owned(self.merges, tenant_id, _pair(tenant_id, current))
            if merge is None:
                return current
            current = merge["winner"]
        raise RuntimeError("merge chain too long")

    async def living(self, tenant_id: str, one_ids: set[str]) -> dict[str, str]:
        """Each one_id mapped to the living person it is now (itself, or whom it was merged into)."""
        ordered = list(one_ids)
        roots = await asyncio.gather(*(self.root(tenant_id, o) for o in ordered))
        return dict(zip(ordered, roots))

    async def views(self, tenant_id: str, one_ids: set[str]) -> dict[str, Person]:
        """What stitching needs to know about living persons: age and identifier counts."""
        ordered = list(one_ids)
        docs = await asyncio.gather(*(find_owned(self.persons, tenant_id, o) for o in ordered))
        views = {}
        for one_id, doc in zip(ordered, docs):
            if doc is None:
                continue
            counts: dict[str, int] = {}
            for kind in doc.get("members", {}).values():
                counts[kind] = counts.get(kind, 0) + 1
            views[one_id] = Person(one_id, doc["created_at"], counts)
        return views

    # ---- merges ----------------------------------------------------------------------------------
    async def claim_merge(self, tenant_id: str, loser: str, winner: str, body: dict[str, Any]) -> str:
        """Merge `loser` into `winner` unless it was merged already; return whom it is merged into."""
        doc = {"_id": _pair(tenant_id, loser), "tenant_id": tenant_id, "loser": loser, "winner": winner, **body}
        if await insert_once(self.merges, doc):
            return winner
        found = await find_owned(self.merges, tenant_id, _pair(tenant_id, loser))
        return found["winner"] if found else winner

    async def fold(self, tenant_id: str, loser: str, winner: str) -> None:
        """Copy the loser's members to the winner (and its survivor), then point the loser at it."""
        doc = await find_owned(self.persons, tenant_id, loser) or {}
        members = doc.get("members", {})
        absorbed = [loser, *doc.get("absorbed", ())]
        targets = [winner]
        root = await self.root(tenant_id, winner)
        if root != winner:
            targets.append(root)
        for target in targets:
            update: dict[str, Any] = {"$addToSet": {"absorbed": {"$each": absorbed}}}
            if members:
                update["$set"] = {f"members.{k}": t for k, t in members.items()}
            await self.persons.update_one({"_id": target}, update)
        await self.persons.update_one({"_id": loser}, {"$set": {"merged_into": winner}})

    async def merges_of(self, tenant_id: str, one_ids: list[str]) -> list[dict[str, Any]]:
        """The merges that made this family: every loser among `one_ids`."""
        docs = await asyncio.gather(*(find_owned(self.merges, tenant_id, _pair(tenant_id, o)) for o in one_ids))
        return sorted((d for d in docs if d), key=lambda d: d["event"]["merged_at"])

    async def merges_caused_by(self, tenant_id: str, root: str, event_id: str) -> list[dict[str, Any]]:
        """The merges into `root`'s family that this touchpoint caused (found by _id through `absorbed`)."""
        person = await find_owned(self.persons, tenant_id, root) or {}
        docs = await self.merges_of(tenant_id, sorted(set(person.get("absorbed", ())) - {root}))
        return [d for d in docs if d.get("event_id") == event_id]

    # ---- conflicts -------------------------------------------------------------------------------
    async def record_conflict(self, tenant_id: str, event_id: str, body: dict[str, Any]) -> None:
        await insert_once(self.conflicts, {"_id": _pair(tenant_id, event_id), "tenant_id": tenant_id,
                                           "event_id": event_id, **body})

    async def list_conflicts(self, tenant_id: str, limit: int) -> list[dict[str, Any]]:
        cursor = self.conflicts.find({"tenant_id": tenant_id})
        return [doc async for doc in cursor.sort("at", DESCENDING).limit(limit)]

    # ---- commands --------------------------------------------------------------------------------
    async def command_result(self, tenant_id: str, command_id: str) -> dict[str, Any] | None:
        return await find_owned(self.commands, tenant_id, _pair(tenant_id, command_id))

    async def save_command_result(self, tenant_id: str, command_id: str, body: dict[str, Any]) -> None:
        await insert_once(self.commands, {"_id": _pair(tenant_id, command_id), "tenant_id": tenant_id, **body})

    # ---- erasure ---------------------------------------------------------------------------------
    async def erase_family(self, tenant_id: str, one_ids: list[str], keys: list[str]) -> None:
        """Delete every trace of these persons' identifiers; keep bare receipts so replays stay no-ops."""
        await self.delete_links(keys)
        for one_id in one_ids:
            await self.merges.update_one({"_id": _pair(tenant_id, one_id)}, {"$unset": {"via": ""}})
        if keys:  # links of other persons made through an erased identifier (after a split)
            await self.links.update_many({"tenant_id": tenant_id, "cause.via": {"$in": keys}},
                                         {"$set": {"cause.via": None}})
        await self.receipts.update_many(
            {"tenant_id": tenant_id, "one_id": {"$in": one_ids}}, {"$set": {"keys": [], "erased": True}}
        )
        await self.conflicts.delete_many({"tenant_id": tenant_id, "persons": {"$in": one_ids}})
        await self.persons.update_many(
            {"_id": {"$in": one_ids}}, {"$set": {"members": {}, "erased": True}}
        )
