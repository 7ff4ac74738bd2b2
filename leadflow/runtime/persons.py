"""What every downstream service keeps about persons identity changed: redirects and erasure markers.

- Merged persons stay as tombstones pointing at whom they live on as (`merged_into`); `follow` walks
  those redirects.
- Erased persons leave a marker whose `_id` is a digest of tenant and one_id (never the one_id), so
  that an event still in flight for them is dropped instead of bringing them back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TypeVar

from leadflow.runtime.store import ensure_collections, insert_once
from schemas.identity import PersonErased, PersonsMerged, PersonSplit

MAX_HOPS = 64  # merge chains are a few hops long; more means a cycle, which identity rules out

S = TypeVar("S")


async def follow(one_id: str, load: Callable[[str], Awaitable[S | None]],
                 merged_into: Callable[[S], str | None]) -> tuple[str, S | None]:
    """The person `one_id` lives on as, following merges, and what is stored for them."""
    for _ in range(MAX_HOPS):
        stored = await load(one_id)
        if stored is None or not merged_into(stored):
            return one_id, stored
        one_id = merged_into(stored)
    raise RuntimeError(f"merge chain longer than {MAX_HOPS} hops from {one_id}")


def persons_of(change) -> tuple[str, ...]:
    """The persons an identity change (a merge, a split or an erasure) writes downstream."""
    match change:
        case PersonsMerged():
            return change.winner, change.loser
        case PersonSplit():
            return change.source, change.new_one_id
        case PersonErased():
            return tuple(change.one_ids)
    raise TypeError(f"not an identity change: {type(change).__name__}")


def erasure_id(tenant_id: str, one_id: str) -> str:
    return hashlib.sha256(f"{tenant_id}\x1f{one_id}".encode()).hexdigest()


class ErasureMarkers:
    """One service's markers of erased persons (the service is the collection's only writer)."""

    def __init__(self, collection) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.collection)

    async def is_erased(self, tenant_id: str, one_id: str) -> bool:
        return await self.collection.find_one({"_id": erasure_id(tenant_id, one_id)}) is not None

    async def mark(self, tenant_id: str, one_ids: Iterable[str], at: datetime) -> None:
        """Mark before deleting: a write racing the erasure either lands first or sees the marker."""
        for one_id in one_ids:
            await insert_once(self.collection, {"_id": erasure_id(tenant_id, one_id), "tenant_id": tenant_id, "at": at})
