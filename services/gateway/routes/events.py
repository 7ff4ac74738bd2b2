"""POST /v1/events: one touchpoint, or {"events": [...]} up to the batch limit."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Body, HTTPException, status
from fastapi.responses import JSONResponse
from kafka.errors import KafkaError

from services.gateway.deps import Ingestor, ServicesDep
from services.gateway.models import IngestResponse

router = APIRouter(tags=["ingest"])

EXAMPLE = {
    "event_id": "crm-20261122-000123",
    "event_type": "form_submitted",
    "occurred_at": "2026-11-22T10:15:00+08:00",
    "source": {"system": "mini-program", "channel": "wechat_mp", "store_id": "store-01"},
    "identifiers": [{"type": "phone", "value": "+86 138 0000 1111"}],
    "attributes": {"name": "张伟", "city": "上海", "car_model": "Model Y", "budget": "25w左右"},
}


@router.post(
    "/v1/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestResponse,
    responses={422: {"description": "nothing accepted: every event was rejected (see results)"},
               429: {"description": "this API key sent more events than its limit; retry after Retry-After seconds"},
               503: {"description": "the broker did not acknowledge; nothing was recorded, retry"}},
)
async def post_events(
    caller: Ingestor,
    services: ServicesDep,
    payload: dict[str, Any] = Body(openapi_examples={"one": {"value": EXAMPLE},
                                                      "batch": {"value": {"events": [EXAMPLE]}}}),
):
    """Ingest touchpoints. 202 once Kafka acknowledged (acks=all), with a result per event."""
    batch = "events" in payload
    items = payload["events"] if batch else [payload]
    if batch and not isinstance(items, list):
        raise HTTPException(422, [{"loc": ["body", "events"], "msg": "must be a list", "type": "list_type"}])
    limit = services.max_batch
    if len(items) > limit:
        raise HTTPException(413, [{"loc": ["body", "events"], "msg": f"at most {limit} events per request",
                                   "type": "too_many_events"}])
    wait = services.ingest_limit.take(caller.key_digest, len(items))
    if math.isinf(wait):
        raise HTTPException(413, [{"loc": ["body", "events"], "msg": f"a batch may hold at most this key's burst "
                                   f"of {services.ingest_limit.burst} events", "type": "batch_over_burst"}])
    if wait:
        retry = max(1, math.ceil(wait))
        raise HTTPException(429, [{"loc": ["body", "events"] if batch else ["body"],
                                   "msg": f"over this key's limit of {services.ingest_limit.rate:g} events/s "
                                          f"(burst {services.ingest_limit.burst}); retry in {retry} s",
                                   "type": "rate_limited"}],
                            headers={"Retry-After": str(retry)})
    try:
        results = await services.ingest.ingest(caller.tenant_id, items, batch=batch)
    except KafkaError as exc:
        raise HTTPException(503, f"broker unavailable: {type(exc).__name__}; nothing was accepted") from None
    counts = {s: sum(r.status == s for r in results) for s in ("accepted", "duplicate", "rejected")}
    body = IngestResponse(**counts, results=[r.__dict__ for r in results]).model_dump()
    code = 422 if counts["rejected"] == len(results) else 202
    return JSONResponse(body, status_code=code)
