"""The scoring store: the only writer of `scores` (one state document per person; a merged person's
stays as a tombstone with `merged_into` and its last state) and `score_erasures` (a digest of every
erased one_id, never the one_id, so that a lead change still in flight cannot bring the person back).

A person's document says when the re-score timer should look at it again (`rescore_at`), and holds
`unsent` while a change the timer made is not yet acknowledged by the broker. `score_agenda` holds the
persons due within a day (unsent ones at once), which the timer reads instead of scanning `scores`
(`leadflow/runtime/agenda.py`). `score_rescores` holds each tenant's latest rescore request
(`leadflow rescore`, after a rule change); its persons scored before it wait for the timer."""

from __future__ import annotations

import json
from datetime import datetime
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.agenda import Agenda
from leadflow.runtime.state import StateDocuments
from leadflow.runtime.persons import ErasureMarkers, follow
from leadflow.runtime.store import ensure_collections

_LIVE = {"merged_into": {"$exists": False}}
# Fields nobody queries inside, stored as JSON text and decoded on every read: FerretDB v1 decodes a
# document value by value, and these two (the explanation, the last change sent) are most of a score
# document's values. A find and a replace of one took 21% less with the last change as text
# (docs/benchmarks.md). Documents written before hold them nested; both read the same.
OPAQUE = ("contributions", "last_change")


def _encoded(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: json.dumps(v, ensure_ascii=False, separators=(",", ":")) if k in OPAQUE and isinstance(v, (dict, list))
            else v for k, v in fields.items()}


def _decoded(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is not None:
        for key in OPAQUE:
            if isinstance(doc.get(key), str):
                doc[key] = json.loads(doc[key])
    return doc


def _agenda_due(doc: dict[str, Any]) -> datetime | None:
    """When the timer must look at a person: at once while a change it made is unsent, else at the
    re-score time."""
    return doc.get("scored_at") if doc.get("unsent") else doc.get("rescore_at")


@dataclass(frozen=True)
class Rescore:
    """A tenant's latest rescore request: every person scored before it is re-scored once for it."""

    request_id: str
    at: datetime


class RescoreReplaced(Exception):
    """A later rescore request of the tenant replaced the one asked about (its id, or None if gone)."""

    def __init__(self, by: str | None) -> None:
        super().__init__(f"replaced by rescore request {by}")
        self.by = by


def waits_for(doc: dict[str, Any], request: Rescore | None) -> bool:
    """Whether the person is still to be re-scored for the request. A score made at the request's very
    time counts as before it (clocks tick in milliseconds); `rescored_for` keeps it to once."""
    return (request is not None and doc.get("rescored_for") != request.request_id
            and (doc.get("scored_at") is None or doc["scored_at"] <= request.at))


def due_of(doc: dict[str, Any], request: Rescore | None) -> datetime | None:
    """When the timer must look at the person, their tenant's rescore request included."""
    due = _agenda_due(doc)
    if waits_for(doc, request):
        due = request.at if due is None else min(due, request.at)
    return due


def score_doc_id(tenant_id: str, one_id: str) -> str:
    return f"{tenant_id}\x1f{one_id}"




class ScoreRepository:
    def __init__(self, db: AsyncDatabase) -> None:
        self.scores = db["scores"]
        self.erasures = ErasureMarkers(db["score_erasures"])
        self._docs = StateDocuments(self.scores)
        self.agenda = Agenda(db["score_agenda"])
        self.rescores = db["score_rescores"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.scores, self.erasures.collection, self.rescores)
        await self.agenda.ensure_indexes()
        await self.scores.create_index([("tenant_id", ASCENDING), ("grade", ASCENDING), ("score", DESCENDING)])
        await self.scores.create_index([("rescore_at", ASCENDING)])
        await self.scores.create_index([("tenant_id", ASCENDING), ("scored_at", ASCENDING)])

    async def get(self, tenant_id: str, one_id: str) -> dict[str, Any] | None:
        doc = await self._docs.load(score_doc_id(tenant_id, one_id))
        return _decoded(doc) if doc is not None and doc.get("tenant_id") == tenant_id else None

    async def save(self, tenant_id: str, one_id: str, fields: dict[str, Any], *, version: int,
                   was: dict[str, Any] | None = None) -> None:
        """Write the person's document whole (see `leadflow/runtime/state.py` for why without compare-and-set).
        Its agenda entry first, unless the document it replaces (`was`) left one due in time."""
        entered = None
        if was is not None and not was.get("merged_into") and (before := _agenda_due(was)) is not None:
            if was.get("scored_at") is not None and before <= was["scored_at"] + self.agenda.horizon:
                entered = before  # entered when `was` was saved (or by a sweep), and moved only by the timer since
        await self.agenda.schedule(tenant_id, one_id, _agenda_due(fields), entered=entered)
        await self._docs.save(score_doc_id(tenant_id, one_id), _encoded({k: v for k, v in fields.items() if k != "_id"}),
                              version=version)

    async def resolve(self, tenant_id: str, one_id: str) -> tuple[str, dict[str, Any] | None]:
        """The person `one_id` lives on as, following merges, and their document."""
        return await follow(one_id, lambda o: self.get(tenant_id, o), lambda doc: doc.get("merged_into"))

    # ---- the re-score timer -------------------------------------------------------------------------
    async def due_until(self, until: datetime) -> list[tuple[str, str, datetime]]:
        """(tenant, one_id, due) of every live person due by `until`, unsent, or waiting for their tenant's
        rescore request: the agenda's sweep. It scans."""
        requests = await self.rescore_requests()
        waiting = [{"tenant_id": tenant, "scored_at": {"$lte": request.at}} for tenant, request in requests.items()]
        query = {"$or": [{"rescore_at": {"$lte": until}}, {"unsent": True}, *waiting], **_LIVE}
        cursor = self.scores.find(query, {"tenant_id": 1, "one_id": 1, "rescore_at": 1, "unsent": 1, "scored_at": 1,
                                          "rescored_for": 1})
        return [(doc["tenant_id"], doc["one_id"], due) async for doc in cursor
                if (due := due_of(doc, requests.get(doc["tenant_id"]))) is not None]

    async def mark_sent(self, tenant_id: str, one_id: str) -> None:
        # By _id alone (FerretDB pushes only that down); a newer whole-document write has no `unsent` anyway.
        await self.scores.update_one({"_id": score_doc_id(tenant_id, one_id)}, {"$unset": {"unsent": ""}})

    async def request_rescore(self, tenant_id: str, request_id: str, at: datetime) -> int:
        """Ask the scoring workers to re-score every live person of the tenant scored by `at`; how many
        persons the tenant has. It writes no score: the tenant's request, then a sweep of every worker's
        agenda (`sweep_soon`), which enters the persons; the workers re-score them under their leases.
        (A lease-less `update_many` of the scores raced the workers' writes: FerretDB v1 applies it as a
        read and a whole-document write, so a score saved in between was lost.)"""
        await self.rescores.replace_one({"_id": tenant_id}, {"tenant_id": tenant_id, "request_id": request_id, "at": at},
                                        upsert=True)
        await self.agenda.sweep_soon()
        return await self.scores.count_documents({"tenant_id": tenant_id, **_LIVE})

    async def rescore_request(self, tenant_id: str) -> Rescore | None:
        doc = await self.rescores.find_one({"_id": tenant_id})
        return Rescore(doc["request_id"], doc["at"]) if doc is not None else None

    async def rescore_requests(self) -> dict[str, Rescore]:
        """Every tenant's latest request (one small document per tenant that ever asked)."""
        return {doc["_id"]: Rescore(doc["request_id"], doc["at"]) async for doc in self.rescores.find({})}

    async def rescore_progress(self, tenant_id: str, request_id: str) -> tuple[int, int]:
        """(persons still waiting for the request, changes it emitted so far). `RescoreReplaced` once a
        later request of the tenant took over (it re-scores the same persons, and those scored since)."""
        request = await self.rescore_request(tenant_id)
        if request is None or request.request_id != request_id:
            raise RescoreReplaced(request.request_id if request else None)
        waiting = await self.scores.count_documents({"tenant_id": tenant_id, "scored_at": {"$lte": request.at},
                                                     "rescored_for": {"$ne": request_id}, **_LIVE})
        changed = await self.scores.count_documents({"tenant_id": tenant_id, "last_source": f"rescore\x1f{request_id}"})
        return waiting, changed

    # ---- erasure ---------------------------------------------------------------------------------
    async def is_erased(self, tenant_id: str, one_id: str) -> bool:
        return await self.erasures.is_erased(tenant_id, one_id)

    async def erase(self, tenant_id: str, one_ids: list[str], *, at: datetime) -> None:
        """Delete the persons' scores. The marker goes first, so an erasure that dies halfway leaves the
        persons marked and its replay deletes the rest; their changes wait meanwhile (the erasure holds
        the persons' guard)."""
        await self.erasures.mark(tenant_id, one_ids, at)
        for one_id in one_ids:
            await self.scores.delete_one({"_id": score_doc_id(tenant_id, one_id)})
            await self.agenda.drop(tenant_id, one_id)

    # ---- reads -----------------------------------------------------------------------------------
    async def one_ids_with_grade(self, tenant_id: str, grades: list[str], limit: int) -> list[str]:
        cursor = self.scores.find({"tenant_id": tenant_id, "grade": {"$in": grades}, **_LIVE}, {"one_id": 1})
        return [doc["one_id"] async for doc in cursor.sort("score", DESCENDING).limit(limit)]

    async def many(self, tenant_id: str, one_ids: list[str]) -> dict[str, dict[str, Any]]:
        cursor = self.scores.find(
            {"tenant_id": tenant_id, "one_id": {"$in": one_ids}, **_LIVE},
            {"one_id": 1, "score": 1, "grade": 1, "contributions": 1, "scored_at": 1},
        )
        return {doc["one_id"]: _decoded(doc) async for doc in cursor}
