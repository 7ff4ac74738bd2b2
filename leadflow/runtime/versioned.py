"""Versioned state documents: optimistic concurrency on one document, the store's unit of atomicity."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from leadflow.runtime.errors import Retryable


class VersionedDocuments:
    """Each document carries `version`; a save succeeds only on top of the version that was read."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def load(self, doc_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": doc_id})

    async def save(self, doc_id: str, fields: dict[str, Any], *, version: int, previous: int) -> None:
        """Write `fields` as `version`; raise Retryable if somebody else wrote since `previous`."""
        body = {**fields, "version": version}
        if previous == 0:
            try:
                await self.collection.insert_one({"_id": doc_id, **body})
            except DuplicateKeyError:
                raise Retryable(f"{self.collection.name}: created concurrently") from None
            return
        result = await self.collection.update_one({"_id": doc_id, "version": previous}, {"$set": body})
        if result.matched_count == 0:
            raise Retryable(f"{self.collection.name}: version {previous} is stale")
