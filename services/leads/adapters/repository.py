"""The leads store: the only writer of
- `leads`: one state document per person; a merged person's stays as a tombstone with `merged_into`
  (and its last lead, which the merge folds into the survivor's); `due_at` says when the timer must
  look at the person next (dormancy, a purchase ageing into a replacement);
- `lead_transitions`: every stage change (from, to, at, cause);
- `lead_erasures`: a digest of every erased one_id (never the one_id), so that a touchpoint still in
  flight cannot bring an erased person back;
- `lead_agenda`: the persons due within a day, which the timer reads instead of scanning `leads`
  (`leadflow/runtime/agenda.py`).
The timeline, counters and source statistics have adapters of their own (timeline.py, signals.py,
sources.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.agenda import Agenda
from leadflow.runtime.persons import ErasureMarkers, follow
from leadflow.runtime.store import ensure_collections
from schemas.leads import Collision, Owner, Route, Stage, Trigger, Verdict
from services.leads.domain.lead import Lead
from services.leads.domain.stages import CauseType, LifecycleState, Transition

_LEAD_FIELDS = {f.name for f in fields(Lead)}
_LIFE_FIELDS = {f.name for f in fields(LifecycleState)}


def lead_doc_id(tenant_id: str, one_id: str) -> str:
    return f"{tenant_id}\x1f{one_id}"




@dataclass(frozen=True)
class Stored:
    """One document of `leads`: a live lead, or a merged person's tombstone (with its last lead, if any)."""

    lead: Lead | None
    merged_into: str | None = None
    due_at: datetime | None = None  # when the timer must look at the person next (written with the lead)


class LeadRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.leads = db["leads"]
        self.transitions = db["lead_transitions"]
        self.erasures = ErasureMarkers(db["lead_erasures"])
        self.agenda = Agenda(db["lead_agenda"])

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.leads, self.transitions, self.erasures.collection)
        await self.agenda.ensure_indexes()
        await self.leads.create_index([("tenant_id", ASCENDING), ("stage", ASCENDING)])
        await self.leads.create_index([("tenant_id", ASCENDING), ("verdict", ASCENDING), ("last_seen_at", DESCENDING)])
        await self.transitions.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING), ("at", ASCENDING)])
        await self.leads.create_index([("due_at", ASCENDING)])
        await self.leads.create_index([("tenant_id", ASCENDING), ("tags", ASCENDING)])

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

    async def store(self, tenant_id: str, one_id: str, stored: Stored, *, due: datetime | None = None) -> None:
        """Write the person's document whole (see `leadflow/runtime/state.py` for why without compare-and-set)."""
        doc = _to_doc(tenant_id, one_id, stored, due)
        await self.agenda.schedule(tenant_id, one_id, doc.get("due_at"))
        await self.leads.replace_one({"_id": lead_doc_id(tenant_id, one_id)}, doc, upsert=True)

    async def save(self, lead: Lead, *, due: datetime | None = None) -> None:
        await self.store(lead.tenant_id, lead.one_id, Stored(lead), due=due)

    async def due_until(self, until: datetime) -> list[tuple[str, str, datetime]]:
        """(tenant, one_id, due) of every live person due by `until`: the agenda's sweep. It scans."""
        cursor = self.leads.find({"due_at": {"$lte": until}, "merged_into": {"$exists": False}},
                                 {"tenant_id": 1, "one_id": 1, "due_at": 1})
        return [(doc["tenant_id"], doc["one_id"], doc["due_at"]) async for doc in cursor]

    # ---- transitions -----------------------------------------------------------------------------
    async def record_transition(self, lead: Lead, transition: Transition) -> None:
        doc = _transition_doc(lead.tenant_id, lead.one_id, transition)
        await self.transitions.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def replace_transitions(self, tenant_id: str, one_id: str, transitions: list[Transition],
                                  *, causes: set[str], stale_types: set[str]) -> None:
        """Make `transitions` the person's stage changes caused by `causes` or of `stale_types`; changes
        with other causes (touchpoints newer than a rebuild) stay. A rare operation: it scans."""
        wanted = {_transition_id(tenant_id, one_id, t): t for t in transitions}
        cursor = self.transitions.find({"tenant_id": tenant_id, "one_id": one_id}, {"cause": 1, "cause_type": 1})
        async for doc in cursor:
            if doc["_id"] not in wanted and (doc.get("cause") in causes or doc.get("cause_type") in stale_types):
                await self.transitions.delete_one({"_id": doc["_id"]})
        for transition in transitions:
            doc = _transition_doc(tenant_id, one_id, transition)
            await self.transitions.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    # ---- erasure ---------------------------------------------------------------------------------
    async def is_erased(self, tenant_id: str, one_id: str) -> bool:
        return await self.erasures.is_erased(tenant_id, one_id)

    async def erase(self, tenant_id: str, one_ids: list[str], *, at: datetime) -> None:
        """Delete everything held on these persons. The marker goes first, so an erasure that dies halfway
        leaves the persons marked and its replay deletes the rest. Their touchpoints wait meanwhile: an
        erasure holds the persons' guard, as every change of them does."""
        await self.erasures.mark(tenant_id, one_ids, at)
        for one_id in one_ids:
            await self.leads.delete_one({"_id": lead_doc_id(tenant_id, one_id)})
            await self.agenda.drop(tenant_id, one_id)
        await self.transitions.delete_many({"tenant_id": tenant_id, "one_id": {"$in": one_ids}})

    # ---- reads -----------------------------------------------------------------------------------
    async def list(self, tenant_id: str, *, verdict: Verdict | None = None, stage: Stage | None = None,
                   tag: str | None = None, reason: str | None = None, one_ids: list[str] | None = None,
                   limit: int = 50) -> list[Lead]:
        query: dict[str, Any] = {"tenant_id": tenant_id, "merged_into": {"$exists": False}, "life": {"$exists": True}}
        if verdict:
            query["verdict"] = verdict.value
        if stage:
            query["stage"] = stage.value
        if tag:
            query["tags"] = tag
        if reason:
            query["reasons"] = reason
        if one_ids is not None:
            query["one_id"] = {"$in": one_ids}
        cursor = self.leads.find(query, {"recent_event_ids": 0}).sort("last_seen_at", DESCENDING).limit(limit)
        return [_to_lead(doc) async for doc in cursor]

    @staticmethod
    def _drill(tenant_id: str, store_ids: list[str] | None, channel: str | None, product: str | None) -> dict[str, Any]:
        match: dict[str, Any] = {"tenant_id": tenant_id, "merged_into": {"$exists": False}, "life": {"$exists": True}}
        if store_ids is not None:
            match["store_id"] = {"$in": store_ids}
        for key, value in (("last_trigger.channel", channel), ("product", product)):
            if value is not None:
                match[key] = value
        return match

    async def stage_counts(self, tenant_id: str, *, store_ids: list[str] | None = None, channel: str | None = None,
                           product: str | None = None) -> dict[Stage, int]:
        """Persons per lifecycle stage, optionally of some stores, a last channel or a product (the drill-down)."""
        match = self._drill(tenant_id, store_ids, channel, product)
        pipeline = [
            {"$match": match},
            {"$group": {"_id": "$stage", "n": {"$sum": 1}}},
        ]
        cursor = await self.leads.aggregate(pipeline)
        return {Stage(doc["_id"]): doc["n"] async for doc in cursor}

    async def stage_entries(self, tenant_id: str, *, store_ids: list[str] | None = None, channel: str | None = None,
                            product: str | None = None, limit: int = 50_000) -> list[tuple[Stage, datetime]]:
        """(stage, when the person entered it) of the tenant's persons, for how long they sit in each stage."""
        cursor = self.leads.find(self._drill(tenant_id, store_ids, channel, product), {"stage": 1, "life.entered_at": 1})
        return [(Stage(d["stage"]), d["life"]["entered_at"]) async for d in cursor.limit(limit)
                if d.get("life", {}).get("entered_at") is not None]

    async def transitions_of(self, tenant_id: str, one_id: str) -> list[dict[str, Any]]:
        cursor = self.transitions.find({"tenant_id": tenant_id, "one_id": one_id}, {"_id": 0, "tenant_id": 0})
        return [doc async for doc in cursor.sort("at", ASCENDING)]


def same_lead(a: Lead, b: Lead) -> bool:
    """Equal as stored (the store keeps milliseconds), whatever their versions."""
    return _ms(_to_doc(a.tenant_id, a.one_id, Stored(replace(a, version=0)))) == _ms(
        _to_doc(b.tenant_id, b.one_id, Stored(replace(b, version=0))))


def _transition_id(tenant_id: str, one_id: str, transition: Transition) -> str:
    cause = transition.cause
    if transition.cause_type is CauseType.TIMER:  # the timer may send a person dormant more than once
        cause = f"{cause}@{transition.at.isoformat()}"
    return f"{tenant_id}\x1f{one_id}\x1f{cause}"


def _transition_doc(tenant_id: str, one_id: str, transition: Transition) -> dict[str, Any]:
    return {
        "_id": _transition_id(tenant_id, one_id, transition),
        "tenant_id": tenant_id,
        "one_id": one_id,
        "from": transition.from_stage,
        "to": transition.to_stage,
        "at": transition.at,
        "cause": transition.cause,
        "cause_type": transition.cause_type.value,
        "detail": transition.detail,
        "stage_before": transition.stage_before,
    }


def _life_doc(life: LifecycleState) -> dict[str, Any]:
    doc = asdict(life)
    doc["service_visits"] = list(life.service_visits)
    return doc


def _to_life(doc: dict[str, Any]) -> LifecycleState:
    data = {k: v for k, v in doc.items() if k in _LIFE_FIELDS}
    for name in ("stage", "stage_before"):
        if data.get(name) is not None:
            data[name] = Stage(data[name])
    data["service_visits"] = tuple(data.get("service_visits", ()))
    return LifecycleState(**data)


def _pairs(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Counts as a list: channel names may hold characters a field name may not ('.', '$')."""
    return [{"k": k, "n": n} for k, n in counts.items()]


def _to_doc(tenant_id: str, one_id: str, stored: Stored, due: datetime | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"tenant_id": tenant_id, "one_id": one_id}
    if stored.lead is not None:
        lead = stored.lead
        body.update({f.name: getattr(lead, f.name) for f in fields(Lead)})
        body["one_id"] = one_id
        body["life"] = _life_doc(lead.life)
        body["stage"] = lead.stage.value  # queried: the funnel, filters
        body["reachable"] = lead.reachable
        for name in ("reasons", "problems", "tags", "phone_links", "bad_phones", "credited", "recent_event_ids", "absorbed"):
            body[name] = list(getattr(lead, name))
        body["event_counts"] = _pairs(dict(lead.event_counts))
        body["channel_counts"] = _pairs(dict(lead.channel_counts))
        for name in ("owner", "collision", "last_trigger"):
            value = getattr(lead, name)
            body[name] = value.model_dump(mode="python") if value is not None else None
        body["due_at"] = due
    body["version"] = stored.lead.version if stored.lead else 0
    if stored.merged_into is not None:
        body["merged_into"] = stored.merged_into
    return body


def _to_stored(doc: dict[str, Any]) -> Stored:
    return Stored(_to_lead(doc) if "life" in doc else None, doc.get("merged_into"), doc.get("due_at"))


def _to_lead(doc: dict[str, Any]) -> Lead:
    data = {k: v for k, v in doc.items() if k in _LEAD_FIELDS}
    data["life"] = _to_life(doc["life"])
    data["verdict"] = Verdict(data["verdict"])
    data["route"] = Route(data.get("route", Route.SALES))
    for name in ("reasons", "problems", "tags", "phone_links", "bad_phones", "credited", "recent_event_ids", "absorbed"):
        data[name] = tuple(data.get(name, ()))
    for name in ("event_counts", "channel_counts"):
        data[name] = {p["k"]: p["n"] for p in data.get(name, ())}
    data["owner"] = Owner.model_validate(data["owner"]) if data.get("owner") else None
    data["collision"] = Collision.model_validate(data["collision"]) if data.get("collision") else None
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
