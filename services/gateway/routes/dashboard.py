"""The ops dashboard's data (`GET /v1/ops/dashboard`): stream health (throughput per topic, lag per
group with stalls, end-to-end latency), the funnel with conversion between stages, drillable by store,
channel and product, source quality, campaign effectiveness with spend, SLA adherence and the consultant
leaderboard, and the latest dead-lettered records. The page that draws it is `/ops`.

Business figures are the caller's tenant's. Stream figures are the deployment's: a topic is shared by
every tenant, and they carry no tenant data. Dead letters are listed only when their payload names the
caller's tenant; the others are only counted."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from leadflow.runtime.dead_letter_tail import latest_dead_letters
from leadflow.runtime.lag import LagCollector
from schemas.leads import Stage
from services.gateway.dashboard import campaigns, conversions, percentile, reached, stage_ages
from services.gateway.deps import Ops, ServicesDep
from services.leads.domain.stages import MAIN_PATH

router = APIRouter(tags=["ops"])


@dataclass
class DashboardSources:
    lag: LagCollector
    spend: dict[str, dict[str, float]]
    bootstrap: str
    dead_letter_topics: list[str]
    topic_prefix: str = ""

    def stream(self) -> dict[str, Any]:
        """The lag reading, with topic and group names as the registry spells them (no deployment prefix)."""
        snap = self.lag.snapshot()
        bare = lambda name: name.removeprefix(self.topic_prefix)  # noqa: E731
        return {**snap, "topics": [{**t, "topic": bare(t["topic"])} for t in snap["topics"]],
                "groups": [{**g, "group": bare(g["group"]), "topic": bare(g["topic"])} for g in snap["groups"]]}


Filter = Annotated[str | None, Query(min_length=1, max_length=64)]


@router.get("/v1/ops/dashboard")
async def ops_dashboard(request: Request, caller: Ops, services: ServicesDep,
                        hours: Annotated[int, Query(ge=1, le=24 * 35)] = 24, store: Filter = None,
                        region: Filter = None, channel: Filter = None, product: Filter = None) -> dict[str, Any]:
    """Everything the ops dashboard draws, in one read; `store`, `region` (the stores the notify routing
    policy maps to it), `channel` and `product` (brand or product line) narrow the funnel."""
    tenant = caller.tenant_id
    sources: DashboardSources = request.app.state.dashboard
    stores = [store] if store else None
    if region:
        stores = [s for s in services.notify.stores_in_region(tenant, region) if store is None or s == store]
    drill = {"store_ids": stores, "channel": channel, "product": product}
    counts = await services.leads.funnel(tenant, **drill)
    now = datetime.now(UTC)
    reach = reached(counts, MAIN_PATH)
    rows = await services.leads.source_quality(tenant, hours=hours)
    latencies = await services.notify.latencies(tenant, hours)
    board = await services.notify.performance(tenant, max(1, hours // 24) if hours >= 24 else 1)
    letters = await asyncio.to_thread(latest_dead_letters, sources.bootstrap, sources.dead_letter_topics)
    judged = sum(p.sla_due for p in board)
    return {
        "tenant_id": tenant, "hours": hours, "generated_at": now,
        "filters": {"store": store, "region": region, "channel": channel, "product": product},
        "stream": sources.stream(),
        "latency": {"n": len(latencies), "p50_s": percentile(latencies, 50), "p90_s": percentile(latencies, 90),
                    "p99_s": percentile(latencies, 99)},
        "funnel": [{"stage": s, "count": counts.get(s, 0), "reached": n} for s, n in reach],
        "off_path": [{"stage": s, "count": counts.get(s, 0)} for s in Stage if s not in MAIN_PATH],
        "conversions": conversions(reach),
        "stage_age_days": stage_ages(await services.leads.stage_entries(tenant, **drill), now),
        "sources": [{"dimension": r.dimension, "value": r.value, "total": r.counts.total, "valid": r.counts.valid,
                     "junk_rate": round(r.counts.junk_rate, 4), "suspect_rate": round(r.counts.suspect_rate, 4),
                     "bad_rate": round(r.counts.bad_rate, 4), "alerting": r.alerting} for r in rows[:15]],
        "campaigns": campaigns(rows, sources.spend.get(tenant, {})),
        "sla": {"judged": judged, "met": sum(p.sla_met for p in board),
                "adherence": round(sum(p.sla_met for p in board) / judged, 4) if judged else None},
        "leaderboard": [{"consultant_id": p.consultant_id, "tasks": p.tasks, "conversions": p.conversions,
                         "expected": p.expected_conversions, "conversion_index": p.conversion_index,
                         "sla_adherence": p.sla_adherence, "first_response_median_min": p.first_response_median_min}
                        for p in board[:10]],
        "dead_letters": {
            "latest": [{"topic": d.topic.removeprefix(sources.topic_prefix), "offset": d.offset, "at": datetime.fromtimestamp(d.at_ms / 1000, UTC),
                        "reason": d.reason, "error": d.error, "consumer": d.consumer}
                       for d in letters if d.tenant_id == tenant][:20],
            "other_or_unattributed": sum(1 for d in letters if d.tenant_id != tenant),
        },
    }
