"""The leads timeline: the only writer of `lead_touchpoints`, one document per thing that happened to a
person, with the person it belongs to, so that a split can rebuild both persons.

Entries: a touchpoint (`tenant␟event_id`, with the verdict it got and whether source quality counted
it), a consultant's outcome (`tenant␟outcome␟id`), a task assignment (`tenant␟task␟id`) and a
referral credit (`tenant␟credit␟referred_one_id`). Each is inserted once; a replay finds its _id taken.
"""

from __future__ import annotations

import json

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections, insert_once
from schemas.identity import TouchpointIdentified
from schemas.leads import Verdict
from schemas.tasks import TaskCreated, TaskOutcomeRecorded
from services.leads.domain.merging import Credit, Filed
from services.leads.domain.quality import Assessment


def touchpoint_entry_id(tenant_id: str, event_id: str) -> str:
    return f"{tenant_id}\x1f{event_id}"


class Timeline:
    def __init__(self, db: AsyncDatabase) -> None:
        self.entries = db["lead_touchpoints"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.entries)
        await self.entries.create_index([("tenant_id", ASCENDING), ("one_id", ASCENDING)])

    # ---- touchpoints -----------------------------------------------------------------------------
    async def add_touchpoint(self, event: TouchpointIdentified, one_id: str,
                             assessment: Assessment) -> tuple[str, dict[str, Any]]:
        """File the touchpoint under `one_id` with its verdict unless the timeline knows it; returns whose it
        is, and its entry (a known one with the verdict it was filed with)."""
        entry = {**_touchpoint(event, one_id), **_verdict(assessment)}
        if await insert_once(self.entries, entry):
            return one_id, entry
        known = await self.entries.find_one({"_id": entry["_id"]})
        if known is None:  # erased in between
            return one_id, entry
        if "event" not in known:  # a split placed it before it arrived: fill it in
            fill = {k: v for k, v in entry.items() if k not in ("_id", "one_id")}
            await self.entries.update_one({"_id": entry["_id"]}, {"$set": fill})
            known.update(fill)
        return known["one_id"], known

    async def set_assessment(self, tenant_id: str, event_id: str, assessment: Assessment) -> None:
        await self.entries.update_one({"_id": touchpoint_entry_id(tenant_id, event_id)}, {"$set": _verdict(assessment)})

    async def mark_counted(self, tenant_id: str, event_id: str) -> None:
        await self.entries.update_one({"_id": touchpoint_entry_id(tenant_id, event_id)}, {"$set": {"counted": True}})

    async def move_touchpoint(self, tenant_id: str, event_id: str, one_id: str) -> None:
        """The touchpoint belongs to `one_id`; if it has not arrived yet, it will find that out."""
        entry_id = touchpoint_entry_id(tenant_id, event_id)
        for _ in range(2):
            if (await self.entries.update_one({"_id": entry_id}, {"$set": {"one_id": one_id}})).matched_count:
                return
            if await insert_once(self.entries, {"_id": entry_id, "tenant_id": tenant_id, "event_id": event_id,
                                                "one_id": one_id}):
                return

    # ---- other entries ---------------------------------------------------------------------------
    async def add_outcome(self, outcome: TaskOutcomeRecorded, one_id: str) -> bool:
        return await insert_once(self.entries, {
            "_id": f"{outcome.tenant_id}\x1foutcome\x1f{outcome.outcome_id}", "tenant_id": outcome.tenant_id,
            "one_id": one_id, "kind": "outcome", "occurred_at": outcome.recorded_at, "payload": outcome.model_dump_json(),
        })

    async def add_assignment(self, task: TaskCreated, one_id: str) -> bool:
        return await insert_once(self.entries, {
            "_id": f"{task.tenant_id}\x1ftask\x1f{task.task_id}", "tenant_id": task.tenant_id, "one_id": one_id,
            "kind": "task", "occurred_at": task.created_at, "payload": task.model_dump_json(),
        })

    async def add_credit(self, tenant_id: str, one_id: str, credit: Credit) -> bool:
        return await insert_once(self.entries, {
            "_id": f"{tenant_id}\x1fcredit\x1f{credit.referred_one_id}", "tenant_id": tenant_id, "one_id": one_id,
            "kind": "credit", "occurred_at": credit.at, "referred_one_id": credit.referred_one_id,
            "event_id": credit.event_id,
        })

    # ---- reads -----------------------------------------------------------------------------------
    async def of(self, tenant_id: str, one_ids: Iterable[str]) -> list[Filed]:
        """Everything filed under these one_ids. A rare operation (splits): it scans."""
        cursor = self.entries.find({"tenant_id": tenant_id, "one_id": {"$in": list(one_ids)}})
        return [filed async for doc in cursor if (filed := _to_filed(doc)) is not None]

    async def entries_of(self, tenant_id: str, one_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """A person's timeline for the lead card, newest first: kinds, times, channels, verdicts, outcomes and
        assignments. Never a touchpoint's attributes or an outcome's note: free text a person typed."""
        fields = {"kind": 1, "occurred_at": 1, "event_type": 1, "channel": 1, "verdict": 1, "reasons": 1, "payload": 1,
                  "_id": 0}
        cursor = self.entries.find({"tenant_id": tenant_id, "one_id": one_id}, fields)
        out = []
        async for doc in cursor.sort("occurred_at", -1).limit(limit):
            payload = json.loads(doc.pop("payload")) if doc.get("payload") else {}
            out.append({**doc, **{k: payload[k] for k in ("outcome", "reason", "consultant_id") if payload.get(k)}})
        return out

    async def erase(self, tenant_id: str, one_ids: list[str]) -> None:
        await self.entries.delete_many({"tenant_id": tenant_id, "one_id": {"$in": one_ids}})

    async def remove(self, entry_id: str) -> None:
        await self.entries.delete_one({"_id": entry_id})


def _verdict(assessment: Assessment) -> dict[str, Any]:
    return {"verdict": assessment.verdict.value, "reasons": list(assessment.reasons)}


def assessment_of(entry: dict[str, Any]) -> Assessment | None:
    """The verdict a touchpoint got when it was first applied (None: not assessed yet)."""
    if "verdict" not in entry:
        return None
    return Assessment(Verdict(entry["verdict"]), tuple(entry.get("reasons", ())))


def _touchpoint(event: TouchpointIdentified, one_id: str) -> dict[str, Any]:
    tp = event.touchpoint
    return {
        "_id": touchpoint_entry_id(event.tenant_id, event.event_id),
        "tenant_id": event.tenant_id,
        "event_id": event.event_id,
        "one_id": one_id,
        "kind": "touchpoint",
        "event_type": tp.event_type.value,
        "occurred_at": tp.occurred_at,
        "channel": tp.source.channel,
        "identified_at": event.identified_at,
        # What `apply` reads, as JSON text: attributes are free-form and FerretDB v1 refuses nested
        # arrays. The IP address is left out; identifiers are masked already (link ids stay: a split
        # rebuilds the person's phones from them).
        "event": event.model_dump_json(exclude={"touchpoint": {"source": {"ip"}}}),
    }


def _to_filed(doc: dict[str, Any]) -> Filed | None:
    kind = doc.get("kind", "touchpoint")
    if kind == "touchpoint":
        if "event" not in doc:
            return None  # placed by a split, not arrived yet
        event = TouchpointIdentified.model_validate_json(doc["event"])
        return Filed(event.touchpoint.occurred_at, event, assessment_of(doc))
    if kind == "outcome":
        outcome = TaskOutcomeRecorded.model_validate_json(doc["payload"])
        return Filed(outcome.recorded_at, outcome)
    if kind == "task":
        task = TaskCreated.model_validate_json(doc["payload"])
        return Filed(task.created_at, task)
    if kind == "credit":
        return Filed(doc["occurred_at"], Credit(doc["referred_one_id"], doc["event_id"], doc["occurred_at"]))
    return None


__all__ = ["Timeline", "assessment_of", "touchpoint_entry_id"]
