"""The leads store: the only writer of
- `leads`: one state document per person; a merged person's stays as a tombstone with `merged_into`
  (and its last lead, which the merge folds into the survivor's);
- `lead_transitions`: every stage change (from, to, at, cause);
- `lead_touchpoints`: the timeline, one document per touchpoint (`tenant␟event_id`) with the person it
  belongs to and what `apply` needs, so that a split can rebuild both persons;
- `lead_erasures`: a digest of every erased one_id (never the one_id), so that a touchpoint still in
  flight cannot bring an erased person back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.persons import ErasureMarkers, follow
from leadflow.runtime.store import ensure_collections, insert_once
from schemas.identity import TouchpointIdentified
from schemas.leads import Stage, Trigger, Verdict
from services.leads.domain.lead import Lead, Transition

_LEAD_FIELDS = {f.name for f in fields(Lead)}


def lead_doc_id(tenant_id: str, one_id: str) -> str:
    return f"{tenant_id}\x1f{one_id}"




@dataclass(frozen=True)
class Stored:
    """One document of `leads`: a live lead, or a merged person's tombstone (with its last lead, if any)."""

    lead: Lead | None
    merged_into: str | None = None


class LeadRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.leads = db["leads"]
        self.transitions = db["lead_transitions"]
        self.touchpoints = db["lead_touchpoints"]
        self.erasures = ErasureMarkers(db["lead_erasures"])

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.leads, self.transitions, self.touchpoints, self.erasures.collection)
        await self.leads.create_index([("tenant_id", ASCENDING), ("stage", ASCENDING)])
        await self.leads.create_index([("tenant_id", ASCENDING), ("verdict", ASCENDING), ("last_seen_at", DESCENDING)])
        await self.transitions.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING), ("at", ASCENDING)])
        await self.touchpoints.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING)])

    # ---- state documents -------------------------------------------------------------------------
    async def load(self, tenant_id: str, one_id: str) -> Stored | None:
        doc = await self.leads.find_one({"_id": lead_doc_id(tenant_id, one_id)})
        return _to_stored(doc) if doc is not None and doc.get("tenant_id") == tenant_id else None

    async def get(self, tenant_id: str, one_id: str) -> Lead | None:
        """The live lead of `one_id` (None for a merged person: see `resolve`)."""
        stored = await self.load(tenant_id, one_id)
        return stored.lead if stored is not None and stored.merged_into is None else None

    async def resolve(self, tenant_id: str, one_id: str) -> tuple[str, Stored | None]:
        """The person `one_id` lives on as, following merges, and what is stored for them."""
        return await follow(one_id, lambda o: self.load(tenant_id, o), lambda stored: stored.merged_into)

    async def store(self, tenant_id: str, one_id: str, stored: Stored) -> None:
        """Write the person's document whole (see `leadflow/runtime/state.py` for why without compare-and-set)."""
        await self.leads.replace_one({"_id": lead_doc_id(tenant_id, one_id)}, _to_doc(tenant_id, one_id, stored), upsert=True)

    async def save(self, lead: Lead) -> None:
        await self.store(lead.tenant_id, lead.one_id, Stored(lead))

    # ---- transitions -----------------------------------------------------------------------------
    async def record_transition(self, lead: Lead, transition: Transition) -> None:
        doc = _transition_doc(lead.tenant_id, lead.one_id, transition)
        await self.transitions.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def forget_transition(self, tenant_id: str, one_id: str, cause_id: str) -> None:
        await self.transitions.delete_one({"_id": _transition_id(tenant_id, one_id, cause_id)})

    async def replace_transitions(self, tenant_id: str, one_id: str, transitions: list[Transition],
                                  *, causes: set[str], stale_types: set[str]) -> None:
        """Make `transitions` the person's stage changes caused by `causes` or of `stale_types`; changes
        with other causes (touchpoints newer than a rebuild) stay. A rare operation: it scans."""
        wanted = {_transition_id(tenant_id, one_id, t.cause_event_id): t for t in transitions}
        cursor = self.transitions.find({"tenant_id": tenant_id, "one_id": one_id}, {"cause_event_id": 1, "cause_event_type": 1})
        async for doc in cursor:
            if doc["_id"] not in wanted and (doc.get("cause_event_id") in causes or doc.get("cause_event_type") in stale_types):
                await self.transitions.delete_one({"_id": doc["_id"]})
        for transition in transitions:
            doc = _transition_doc(tenant_id, one_id, transition)
            await self.transitions.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    # ---- the timeline ----------------------------------------------------------------------------
    async def add_touchpoint(self, event: TouchpointIdentified, one_id: str) -> str:
        """File the touchpoint under `one_id` unless the timeline knows it; returns whose it is."""
        entry = _entry(event, one_id)
        if await insert_once(self.touchpoints, entry):
            return one_id
        known = await self.touchpoints.find_one({"_id": entry["_id"]})
        if known is None:  # erased in between
            return one_id
        if "event" not in known:  # a split placed it before it arrived: fill it in
            await self.touchpoints.update_one(
                {"_id": entry["_id"]}, {"$set": {k: v for k, v in entry.items() if k not in ("_id", "one_id")}}
            )
        return known["one_id"]

    async def move_touchpoint(self, tenant_id: str, event_id: str, one_id: str) -> None:
        """The touchpoint belongs to `one_id`; if it has not arrived yet, it will find that out."""
        entry_id = f"{tenant_id}\x1f{event_id}"
        for _ in range(2):
            if (await self.touchpoints.update_one({"_id": entry_id}, {"$set": {"one_id": one_id}})).matched_count:
                return
            if await insert_once(self.touchpoints, {"_id": entry_id, "tenant_id": tenant_id, "event_id": event_id,
                                                    "one_id": one_id}):
                return

    async def forget_touchpoint(self, tenant_id: str, event_id: str) -> None:
        await self.touchpoints.delete_one({"_id": f"{tenant_id}\x1f{event_id}"})

    async def timeline(self, tenant_id: str, one_ids: Iterable[str]) -> list[TouchpointIdentified]:
        """The touchpoints filed under these one_ids. A rare operation (splits): it scans."""
        cursor = self.touchpoints.find({"tenant_id": tenant_id, "one_id": {"$in": list(one_ids)}})
        return [TouchpointIdentified.model_validate_json(doc["event"]) async for doc in cursor if "event" in doc]

    # ---- erasure ---------------------------------------------------------------------------------
    async def is_erased(self, tenant_id: str, one_id: str) -> bool:
        return await self.erasures.is_erased(tenant_id, one_id)

    async def erase(self, tenant_id: str, one_ids: list[str], *, at: datetime) -> None:
        """Delete everything held on these persons. The marker goes first: a touchpoint applied while
        this runs either lands before the deletes below, or sees the marker afterwards."""
        await self.erasures.mark(tenant_id, one_ids, at)
        for one_id in one_ids:
            await self.leads.delete_one({"_id": lead_doc_id(tenant_id, one_id)})
        await self.touchpoints.delete_many({"tenant_id": tenant_id, "one_id": {"$in": one_ids}})
        await self.transitions.delete_many({"tenant_id": tenant_id, "one_id": {"$in": one_ids}})

    async def forget(self, tenant_id: str, one_id: str, event_id: str) -> None:
        """Undo what applying one touchpoint wrote (it raced the person's erasure)."""
        await self.leads.delete_one({"_id": lead_doc_id(tenant_id, one_id)})
        await self.forget_touchpoint(tenant_id, event_id)
        await self.forget_transition(tenant_id, one_id, event_id)

    # ---- reads -----------------------------------------------------------------------------------
    async def list(self, tenant_id: str, *, verdict: Verdict | None, one_ids: list[str] | None, limit: int) -> list[Lead]:
        query: dict[str, Any] = {"tenant_id": tenant_id, "merged_into": {"$exists": False}}
        if verdict:
            query["verdict"] = verdict.value
        if one_ids is not None:
            query["one_id"] = {"$in": one_ids}
        cursor = self.leads.find(query, {"recent_event_ids": 0}).sort("last_seen_at", DESCENDING).limit(limit)
        return [_to_lead(doc) async for doc in cursor]

    async def stage_counts(self, tenant_id: str) -> dict[Stage, int]:
        pipeline = [
            {"$match": {"tenant_id": tenant_id, "merged_into": {"$exists": False}}},
            {"$group": {"_id": "$stage", "n": {"$sum": 1}}},
        ]
        cursor = await self.leads.aggregate(pipeline)
        return {Stage(doc["_id"]): doc["n"] async for doc in cursor}

    async def transitions_of(self, tenant_id: str, one_id: str) -> list[dict[str, Any]]:
        cursor = self.transitions.find({"tenant_id": tenant_id, "one_id": one_id}, {"_id": 0, "tenant_id": 0})
        return [doc async for doc in cursor.sort("at", ASCENDING)]


def same_lead(a: Lead, b: Lead) -> bool:
    """Equal as stored (the store keeps milliseconds), whatever their versions."""
    return _ms(_to_doc(a.tenant_id, a.one_id, Stored(replace(a, version=0)))) == _ms(
        _to_doc(b.tenant_id, b.one_id, Stored(replace(b, version=0))))


def _entry(event: TouchpointIdentified, one_id: str) -> dict[str, Any]:
    tp = event.touchpoint
    return {
        "_id": f"{event.tenant_id}\x1f{event.event_id}",
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "one_id": one_id,
        "event_type": tp.event_type.value,
        "occurred_at": tp.occurred_at,
        "channel": tp.source.channel,
        "identified_at": event.identified_at,
        # What `apply` reads, as JSON text: attributes are free-form and FerretDB v1 refuses nested
        # arrays. Link ids and the IP address are left out; identifiers are masked already.
        "event": event.model_dump_json(exclude={"identifiers": True, "touchpoint": {"source": {"ip"}}}),
    }


def _transition_id(tenant_id: str, one_id: str, cause_id: str) -> str:
    return f"{tenant_id}\x1f{one_id}\x1f{cause_id}"


def _transition_doc(tenant_id: str, one_id: str, transition: Transition) -> dict[str, Any]:
    return {
        "_id": _transition_id(tenant_id, one_id, transition.cause_event_id),
        "tenant_id": tenant_id,
        "one_id": one_id,
        "from": transition.from_stage,
        "to": transition.to_stage,
        "at": transition.at,
        "cause_event_id": transition.cause_event_id,
        "cause_event_type": transition.cause_event_type,
    }


def _to_doc(tenant_id: str, one_id: str, stored: Stored) -> dict[str, Any]:
    body: dict[str, Any] = {"tenant_id": tenant_id, "one_id": one_id}
    if stored.lead is not None:
        lead = stored.lead
        body.update(asdict(lead))
        body["one_id"] = one_id
        body["reasons"] = list(lead.reasons)
        body["recent_event_ids"] = list(lead.recent_event_ids)
        body["absorbed"] = list(lead.absorbed)
        body["last_trigger"] = lead.last_trigger.model_dump(mode="python") if lead.last_trigger else None
    body["version"] = stored.lead.version if stored.lead else 0
    if stored.merged_into is not None:
        body["merged_into"] = stored.merged_into
    return body


def _to_stored(doc: dict[str, Any]) -> Stored:
    return Stored(_to_lead(doc) if "stage" in doc else None, doc.get("merged_into"))


def _to_lead(doc: dict[str, Any]) -> Lead:
    data = {k: v for k, v in doc.items() if k in _LEAD_FIELDS}
    data["stage"] = Stage(data["stage"])
    data["verdict"] = Verdict(data["verdict"])
    data["reasons"] = tuple(data.get("reasons", ()))
    data["recent_event_ids"] = tuple(data.get("recent_event_ids", ()))
    data["absorbed"] = tuple(data.get("absorbed", ()))
    data["last_trigger"] = Trigger.model_validate(data["last_trigger"]) if data.get("last_trigger") else None
    data.setdefault("on_timeline", False)  # a lead written before the timeline existed
    return Lead(**data)


def _ms(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, dict):
        return {k: _ms(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_ms(v) for v in value]
    return value
