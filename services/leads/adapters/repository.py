"""The leads store: the only writer of `leads` (one state document per person) and
`lead_transitions` (every stage change: from, to, at, cause)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections, insert_once
from leadflow.runtime.state import StateDocuments
from schemas.leads import Stage, Verdict
from services.leads.domain.lead import Lead, Transition

_LEAD_FIELDS = {f.name for f in fields(Lead)}


def lead_doc_id(tenant_id: str, one_id: str) -> str:
    return f"{tenant_id}\x1f{one_id}"


class LeadRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.leads = db["leads"]
        self.transitions = db["lead_transitions"]
        self._docs = StateDocuments(self.leads)

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.leads, self.transitions)
        await self.leads.create_index([("tenant_id", ASCENDING), ("stage", ASCENDING)])
        await self.leads.create_index([("tenant_id", ASCENDING), ("verdict", ASCENDING), ("last_seen_at", DESCENDING)])
        await self.transitions.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING), ("at", ASCENDING)])

    async def get(self, tenant_id: str, one_id: str) -> Lead | None:
        doc = await self._docs.load(lead_doc_id(tenant_id, one_id))
        return _to_lead(doc) if doc else None

    async def save(self, lead: Lead) -> None:
        body = asdict(lead)
        body["recent_event_ids"] = list(lead.recent_event_ids)
        body["reasons"] = list(lead.reasons)
        body.pop("version")
        await self._docs.save(lead_doc_id(lead.tenant_id, lead.one_id), body, version=lead.version)

    async def record_transition(self, lead: Lead, transition: Transition) -> None:
        await insert_once(self.transitions, {
            "_id": f"{lead.tenant_id}\x1f{lead.one_id}\x1f{transition.cause_event_id}",
            "tenant_id": lead.tenant_id,
            "one_id": lead.one_id,
            "from": transition.from_stage,
            "to": transition.to_stage,
            "at": transition.at,
            "cause_event_id": transition.cause_event_id,
            "cause_event_type": transition.cause_event_type,
        })

    # ---- reads -----------------------------------------------------------------------------------
    async def list(self, tenant_id: str, *, verdict: Verdict | None, one_ids: list[str] | None, limit: int) -> list[Lead]:
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if verdict:
            query["verdict"] = verdict.value
        if one_ids is not None:
            query["one_id"] = {"$in": one_ids}
        cursor = self.leads.find(query, {"recent_event_ids": 0}).sort("last_seen_at", DESCENDING).limit(limit)
        return [_to_lead(doc) async for doc in cursor]

    async def stage_counts(self, tenant_id: str) -> dict[Stage, int]:
        pipeline = [{"$match": {"tenant_id": tenant_id}}, {"$group": {"_id": "$stage", "n": {"$sum": 1}}}]
        cursor = await self.leads.aggregate(pipeline)
        return {Stage(doc["_id"]): doc["n"] async for doc in cursor}

    async def transitions_of(self, tenant_id: str, one_id: str) -> list[dict[str, Any]]:
        cursor = self.transitions.find({"tenant_id": tenant_id, "one_id": one_id}, {"_id": 0, "tenant_id": 0})
        return [doc async for doc in cursor.sort("at", ASCENDING)]


def _to_lead(doc: dict[str, Any]) -> Lead:
    data = {k: v for k, v in doc.items() if k in _LEAD_FIELDS}
    data["stage"] = Stage(data["stage"])
    data["verdict"] = Verdict(data["verdict"])
    data["reasons"] = tuple(data.get("reasons", ()))
    data["recent_event_ids"] = tuple(data.get("recent_event_ids", ()))
    return Lead(**data)
