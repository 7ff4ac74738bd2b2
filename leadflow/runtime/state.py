"""State documents: one document per key (e.g. per person), written whole by its single writer.

Why no compare-and-set on `version`: each document is derived from one ordered log, the Kafka
partition that its key maps to, consumed by one agent with concurrency 1. Two writers overlap only
for a moment during a rebalance, and both then apply the same records of the same partition in the
same order; every document remembers the event ids it applied, so whichever write lands last, the
next owner re-reads it and re-applies whatever it lacks. Last-writer-wins therefore converges.
A guarded update (`{_id, version}`) would also be correct, but FerretDB v1's SQLite backend pushes
down only a filter that is exactly `{_id: …}` and scans the whole collection for anything else
(measured: 100+ ms per write at a few thousand documents, against 2-4 ms by _id alone).
Writes that reach a document from another partition (after a merge) are not derived from its own log:
those run under per-person leases while a service runs as several workers (`leadflow/runtime/leases.py`).
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection


class StateDocuments:
    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def load(self, doc_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": doc_id})

    async def save(self, doc_id: str, fields: dict[str, Any], *, version: int) -> None:
        """Write the whole state as `version` (a counter readers can rely on to grow)."""
        await self.collection.replace_one({"_id": doc_id}, {**fields, "version": version}, upsert=True)
