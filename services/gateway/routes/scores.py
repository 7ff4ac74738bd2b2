"""Scores: a person's score with its explanation (consultants and ops), and the tenant's learned model
with its held-out quality (ops). Every read is scoped to the caller's tenant."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException

from services.gateway.deps import Ops, Reader, ServicesDep
from services.gateway.models import CalibrationOut, ExplanationLine, ModelOut, ScoreOut
from services.scoring.domain.learning import blend_weight

router = APIRouter(tags=["scores"])


@router.get("/v1/scores/model", response_model=ModelOut)
async def scoring_model(caller: Ops, services: ServicesDep):
    """The tenant's model learned from consultants' outcomes: version, how many outcomes, the weight it
    has in scores, its weights, and the AUC and calibration of rules, model and blend on held-out outcomes."""
    rules, stored, quality = await services.scoring.model_report(caller.tenant_id)
    model = stored.model
    return ModelOut(
        tenant_id=caller.tenant_id, rules=rules.ref, mode=str(rules.learning.mode), model_version=model.version,
        outcomes_learned=model.n, positives=model.positives,
        blend_weight=round(blend_weight(model.n, rules.learning), 4) if rules.learning.mode == "blend" else 0.0,
        min_outcomes=rules.learning.min_outcomes, updated_at=stored.updated_at,
        weights={k: round(v, 4) for k, v in sorted(model.weights.items(), key=lambda kv: -abs(kv[1]))},
        bias=round(model.bias, 4), evaluated=quality.n, auc=dict(quality.auc),
        calibration={name: None if cal is None else CalibrationOut(brier=cal.brier, ece=cal.ece, bins=[
            {"lower": b.lower, "upper": b.upper, "count": b.count, "predicted": round(b.predicted, 4),
             "observed": round(b.observed, 4)} for b in cal.bins]) for name, cal in quality.calibration.items()},
    )


@router.get("/v1/scores/{one_id}", response_model=ScoreOut, responses={404: {}})
async def person_score(one_id: str, caller: Reader, services: ServicesDep, lang: Literal["zh", "en"] = "zh"):
    """A person's score and grade, and why: the top contributions in words a consultant understands
    (Simplified Chinese by default, `lang=en` for English)."""
    tenant = caller.tenant_id
    one_id = await services.identity.live_one_id(tenant, one_id)
    doc = await services.scoring.get(tenant, one_id)
    if doc is None or "score" not in doc:
        raise HTTPException(404, "no score for this person in this tenant")
    return ScoreOut(
        one_id=doc["one_id"], score=doc["score"], grade=doc["grade"], rule_score=doc.get("rule_score"),
        probability=doc.get("probability"), blend_weight=doc.get("blend_weight") or 0.0,
        model_version=doc.get("model_version"), rules=doc.get("rules"), scored_at=doc.get("scored_at"),
        next_rescore_at=doc.get("rescore_at"), explanation=explanation(doc.get("contributions", []), lang),
    )


def explanation(contributions: list[dict], lang: str) -> list[ExplanationLine]:
    """The stored lines in the language asked for (lines stored before v1.1 have no words: label and points)."""
    lines = []
    for c in contributions:
        text = c.get("text_en" if lang == "en" else "text") or f"{c['label']} {c['points']:+g}"
        lines.append(ExplanationLine(signal=c["signal"], label=c["label"], count=c["count"], points=c["points"],
                                     text=text, last_at=c.get("last_at")))
    return lines
