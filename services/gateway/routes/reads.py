"""Reads across services, each through that service's own query functions: identity look-ups,
profiles, leads and the ops funnel. Every read is scoped to the caller's tenant."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import ValidationError

from schemas.leads import Stage, Verdict
from schemas.scores import Contribution, Grade
from schemas.tasks import TaskStatus
from schemas.touchpoints import Identifier, IdentifierType
from services.gateway.deps import Ops, Reader, ServicesDep
from services.gateway.models import (
    FunnelStage,
    IdentifierOut,
    LeadOut,
    OpsSummary,
    ProfileOut,
    ResolveResponse,
    SourceAlertOut,
    SourceCountsOut,
    SourceQualityOut,
    SourcesOut,
    TimelineEntryOut,
)
from services.identity.domain.normalize import InvalidIdentifier
from services.leads.domain.lead import Lead
from services.leads.domain.stages import MAIN_PATH, time_in_stages

router = APIRouter(tags=["reads"])


@router.get("/v1/identity/resolve", response_model=ResolveResponse, responses={404: {}, 422: {}})
async def resolve(
    caller: Ops,
    services: ServicesDep,
    type: IdentifierType,
    value: Annotated[str, Query(min_length=1, max_length=256)],
    namespace: Annotated[str | None, Query(max_length=128)] = None,
):
    """The one_id of an identifier, normalised exactly as on ingest."""
    try:
        identifier = Identifier(type=type, value=value, namespace=namespace)
        one_id = await services.identity.resolve(caller.tenant_id, identifier)
    except InvalidIdentifier as exc:
        raise HTTPException(422, [{"loc": ["query", "value"], "msg": f"cannot normalise: {exc.reason}",
                                   "type": exc.reason}]) from None
    except ValidationError as exc:  # e.g. an openid without namespace; never echo the value
        raise HTTPException(422, [{"loc": ["query", "namespace"], "msg": e["msg"], "type": e["type"]}
                                  for e in exc.errors(include_input=False, include_url=False)]) from None
    if one_id is None:
        raise HTTPException(404, "no person has this identifier")
    return ResolveResponse(one_id=one_id)


def _lead_out(lead: Lead, score: dict | None) -> dict:
    snap = lead.snapshot().model_dump(exclude={"verdict", "last_inquiry_at"})
    return {
        **snap,
        "one_id": lead.one_id,
        "lead_status": lead.verdict,
        "first_seen_at": lead.first_seen_at,
        "last_seen_at": lead.last_seen_at,
        "score": score.get("score") if score else None,
        "grade": score.get("grade") if score else None,
    }


@router.get("/v1/profiles/{one_id}", response_model=ProfileOut, responses={404: {}})
async def profile(one_id: str, caller: Reader, services: ServicesDep):
    """One person: identifiers (masked), lifecycle stage, lead status, score, grade and owner."""
    tenant = caller.tenant_id
    one_id = await services.identity.live_one_id(tenant, one_id)
    lead = await services.leads.get(tenant, one_id)
    identifiers = await services.identity.identifiers_of(tenant, one_id)
    if lead is None and not identifiers:
        raise HTTPException(404, "no such person in this tenant")
    score = await services.scoring.get(tenant, one_id)
    history = await services.leads.history(tenant, one_id)
    now = datetime.now(UTC)
    tasks = await services.notify.tasks(tenant_id=tenant, consultant_id=None, status=TaskStatus.OPEN, one_id=one_id, limit=1)
    body = _lead_out(lead, score) if lead else {"one_id": one_id, "lead_status": Verdict.VALID,
                                                "stage": Stage.ANONYMOUS, "reachable": False, "touchpoints": 0}
    return ProfileOut(
        **body,
        identifiers=[IdentifierOut(**{**i, "value": i.pop("masked")}) for i in identifiers],
        explanation=[{k: v for k, v in c.items() if k in Contribution.model_fields}
                     for c in score.get("contributions", [])] if score else [],
        owner_consultant_id=tasks[0].get("consultant_id") if tasks else None,
        open_task_id=tasks[0]["_id"] if tasks else None,
        history=history,
        stage_durations_s={str(stage): round(d.total_seconds(), 3) for stage, d in time_in_stages(history, now).items()},
    )


@router.get("/v1/profiles/{one_id}/timeline", response_model=list[TimelineEntryOut], responses={404: {}})
async def timeline(one_id: str, caller: Reader, services: ServicesDep,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100):
    """The person's touchpoints (with their verdicts), outcomes and assignments, newest first."""
    tenant = caller.tenant_id
    one_id = await services.identity.live_one_id(tenant, one_id)
    if await services.leads.get(tenant, one_id) is None and not await services.identity.identifiers_of(tenant, one_id):
        raise HTTPException(404, "no such person in this tenant")
    return [TimelineEntryOut(**d) for d in await services.leads.timeline_of(tenant, one_id, limit)]


@router.get("/v1/leads", response_model=list[LeadOut])
async def leads(
    caller: Ops,
    services: ServicesDep,
    status: Verdict | None = None,
    grade: Grade | None = None,
    stage: Stage | None = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=64, description="e.g. 意向:Model Y, 价格敏感")] = None,
    reason: Annotated[str | None, Query(min_length=1, max_length=64, description="a verdict reason code")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    """Leads of the caller's tenant, newest activity first, filtered by status (verdict), grade, stage,
    tag and verdict reason."""
    tenant = caller.tenant_id
    one_ids = None
    if grade is not None:
        one_ids = await services.scoring.one_ids_with_grade(tenant, [grade.value], limit=5_000)
    found = await services.leads.list(tenant, verdict=status, stage=stage, tag=tag, reason=reason, one_ids=one_ids,
                                      limit=limit)
    scores = await services.scoring.many(tenant, [lead.one_id for lead in found])
    return [_lead_out(lead, scores.get(lead.one_id)) for lead in found]


@router.get("/v1/ops/summary", response_model=OpsSummary)
async def ops_summary(caller: Ops, services: ServicesDep):
    """Funnel counts per lifecycle stage."""
    counts = await services.leads.funnel(caller.tenant_id)
    order = list(MAIN_PATH) + [s for s in Stage if s not in MAIN_PATH]
    return OpsSummary(
        tenant_id=caller.tenant_id,
        total=sum(counts.values()),
        funnel=[FunnelStage(stage=s, count=counts.get(s, 0)) for s in order],
    )


@router.get("/v1/ops/sources", response_model=SourcesOut)
async def ops_sources(caller: Ops, services: ServicesDep,
                      hours: Annotated[int, Query(ge=1, le=24 * 35, description="the window, in hours")] = 24):
    """Source quality, the fake-prosperity detector: valid, suspect and junk touchpoints per channel,
    campaign and store over the last `hours`, worst first, with each source's baseline and the alerts
    raised when a source's bad rate jumped above it."""
    tenant = caller.tenant_id
    rows = await services.leads.source_quality(tenant, hours=hours)
    alerts = await services.leads.alerts(tenant, hours=hours)
    return SourcesOut(
        tenant_id=tenant,
        hours=hours,
        sources=[SourceQualityOut(
            dimension=r.dimension, value=r.value,
            counts=SourceCountsOut(valid=r.counts.valid, suspect=r.counts.suspect, junk=r.counts.junk,
                                   total=r.counts.total),
            junk_rate=round(r.counts.junk_rate, 4), suspect_rate=round(r.counts.suspect_rate, 4),
            bad_rate=round(r.counts.bad_rate, 4),
            baseline=None if r.baseline is None else round(r.baseline, 4), alerting=r.alerting,
        ) for r in rows],
        alerts=[SourceAlertOut(**a) for a in alerts],
    )
