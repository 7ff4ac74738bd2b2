"""The learned models: the only writer of `score_models`, one document per tenant (`_id` = tenant id)
holding the weights, the outcome ids already learned from (so a replayed outcome teaches nothing
twice), and the held-out evaluations the quality report is computed from. Written whole, in one
single-document write, so the model and the ids it learned from never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections
from services.scoring.domain.learning import Evaluation, Model

APPLIED_KEPT = 5_000  # outcome ids remembered: far more than a replay after a crash can repeat


@dataclass(frozen=True)
class StoredModel:
    model: Model
    applied: tuple[str, ...] = ()
    evaluations: tuple[Evaluation, ...] = ()
    updated_at: datetime | None = None


def _pairs(mapping: Any) -> list[dict[str, Any]]:
    # FerretDB v1 and dotted keys: weights are stored as a list of {k, v}, never as a sub-document.
    return [{"k": k, "v": v} for k, v in sorted(mapping.items())]


class ModelStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.models = db["score_models"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.models)

    async def load(self, tenant_id: str) -> StoredModel:
        doc = await self.models.find_one({"_id": tenant_id})
        if doc is None:
            return StoredModel(Model())
        model = Model(
            weights=MappingProxyType({p["k"]: p["v"] for p in doc.get("weights", ())}),
            bias=doc.get("bias", 0.0),
            g2=MappingProxyType({p["k"]: p["v"] for p in doc.get("g2", ())}),
            n=doc.get("n", 0),
            positives=doc.get("positives", 0),
            version=doc.get("version", 0),
        )
        evaluations = tuple(Evaluation(e["r"], e["m"], e["b"], e["y"]) for e in doc.get("evaluations", ()))
        return StoredModel(model, tuple(doc.get("applied", ())), evaluations, doc.get("updated_at"))

    async def save(self, tenant_id: str, stored: StoredModel, *, evaluations_kept: int) -> None:
        m = stored.model
        await self.models.replace_one({"_id": tenant_id}, {
            "tenant_id": tenant_id,
            "weights": _pairs(m.weights),
            "bias": m.bias,
            "g2": _pairs(m.g2),
            "n": m.n,
            "positives": m.positives,
            "version": m.version,
            "applied": list(stored.applied[-APPLIED_KEPT:]),
            "evaluations": [{"r": e.rule, "m": e.model, "b": e.blend, "y": e.label}
                            for e in stored.evaluations[-evaluations_kept:]],
            "updated_at": stored.updated_at,
        }, upsert=True)
