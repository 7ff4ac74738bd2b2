"""The scoring store: the only writer of `scores`, one state document per person."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.state import StateDocuments
from leadflow.runtime.store import ensure_collections


def score_doc_id(tenant_id: str, one_id: str) -> str:
    return f"{tenant_id}\x1f{one_id}"


class ScoreRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.scores = db["scores"]
        self._docs = StateDocuments(self.scores)

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.scores)
        await self.scores.create_index([("tenant_id", ASCENDING), ("grade", ASCENDING), ("score", DESCENDING)])

    async def get(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        return await self._docs.load(score_doc_id(tenant_id, one_id))

    async def save(self, tenant_id: str, one_id: str, fields: dict[str, Any], *, version: int) -> None:
        await self._docs.save(score_doc_id(tenant_id, one_id), fields, version=version)

    async def one_ids_with_grade(self, tenant_id: str, grades: list[str], limit: int) -> list[str]:
        cursor = self.scores.find({"tenant_id": tenant_id, "grade": {"$in": grades}}, {"one_id": 1})
        return [doc["one_id"] async for doc in cursor.sort("score", DESCENDING).limit(limit)]

    async def many(self, tenant_id: str, one_ids: list[str]) -> dict[str, dict[str, Any]]:
        cursor = self.scores.find(
            {"tenant_id": tenant_id, "one_id": {"$in": one_ids}},
            {"one_id": 1, "score": 1, "grade": 1, "contributions": 1, "scored_at": 1},
        )
        return {doc["one_id"]: doc async for doc in cursor}
