"""The HTTP API: build the FastAPI app for given settings (nothing happens at import time)."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest

from leadflow.runtime import store
from leadflow.runtime.errors import RetryLater
from leadflow.runtime.metrics import STREAM_ALERTS
from leadflow.runtime.lag import LagCollector, registry_groups
from leadflow.sdk import EventProducer, Publisher
from services.gateway.auth import parse_api_keys
from services.gateway.deps import Services
from services.gateway.ingest import IngestService
from services.gateway.rate_limit import RateLimiter
from services.gateway.receipts import ReceiptRepository
from services.gateway.identity_commands import IdentityCommandClient, RevealAudit
from leadflow.runtime.watch import StreamWatch, WatchPolicy
from schemas.topics import OPS_ALERTS, TOPICS, dead_letter_topic
from services.gateway.dashboard import load_spend
from services.gateway.routes import dashboard, events, identity, pages, reads, scores, tasks
from services.gateway.routes.dashboard import DashboardSources
from services.gateway.settings import GatewaySettings
from services.identity.bootstrap import build_operations as build_identity_operations
from services.identity.bootstrap import build_service as build_identity
from services.leads.bootstrap import build_for_reads
from services.notify.bootstrap import build_for_api as build_notify_api
from services.scoring.bootstrap import build_for_reads as build_scoring_reads

REQUESTS = Counter("leadflow_api_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("leadflow_api_request_seconds", "HTTP request latency", ["method", "route"])


log = logging.getLogger(__name__)

def create_app(settings: GatewaySettings) -> FastAPI:
    keys = parse_api_keys(settings.api_keys.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        client, db = store.connect(settings, app_name="gateway")
        publisher = Publisher(settings.kafka_bootstrap, topic_prefix=settings.topic_prefix)
        producer = EventProducer(settings.kafka_bootstrap, client_id="leadflow-gateway")
        clock = lambda: datetime.now(UTC)  # noqa: E731
        receipts = ReceiptRepository(db)
        await receipts.ensure_indexes()
        audit = RevealAudit(db)
        await audit.ensure_indexes()
        identity_service = build_identity(settings, db)
        atomic = settings.store_atomic_updates
        if atomic is None:
            atomic = await store.applies_updates_atomically(db)
        app.state.ready = (db, producer)
        app.state.services = Services(
            ingest=IngestService(receipts, publisher, clock=clock),
            identity=identity_service,
            identity_operations=build_identity_operations(identity_service),
            identity_commands=IdentityCommandClient(producer, topic_prefix=settings.topic_prefix),
            reveal_audit=audit,
            leads=build_for_reads(db, settings.leads_policy_file),
            scoring=build_scoring_reads(db, settings.scoring_rules_file, clock=clock),
            notify=build_notify_api(db, settings.notify_policy_file, clock=clock, producer=producer,
                                    topic_prefix=settings.topic_prefix, atomic_store=atomic),
            keys=keys,
            max_batch=settings.max_batch,
            ingest_limit=RateLimiter(settings.ingest_rate_per_s, settings.ingest_burst),
        )
        lag = LagCollector(settings.kafka_bootstrap, registry_groups(settings.topic_prefix),
                           stall_after_s=settings.lag_stall_after_s, min_interval_s=settings.lag_interval_s)
        REGISTRY.register(lag)
        app.state.lag = lag
        app.state.echarts_file = settings.echarts_file
        app.state.dashboard = DashboardSources(
            lag=lag, spend=load_spend(settings.campaign_spend_file), bootstrap=settings.kafka_bootstrap,
            dead_letter_topics=[dead_letter_topic(spec, consumer).qualified(settings.topic_prefix)
                                for spec in TOPICS for consumer in spec.consumers],
            topic_prefix=settings.topic_prefix)

        watch = StreamWatch(WatchPolicy(settings.lag_growing_readings, settings.lag_alert_min))
        alerts_topic = OPS_ALERTS.qualified(settings.topic_prefix)

        async def read_lag() -> None:
            """Read the lag every interval; a new reading goes through the stream watch, and what it raises
            goes to ops.alerts (a broker away is retried at the next reading)."""
            seen = None
            while True:
                await asyncio.to_thread(lag.refresh)
                reading = lag.snapshot()
                if reading["read_at_monotonic"] not in (None, seen):
                    seen = reading["read_at_monotonic"]
                    raised = watch.observe(reading["groups"], clock())
                    try:
                        await asyncio.to_thread(producer.send_all, [(alerts_topic, a.group.encode(), a.to_bytes())
                                                                    for a in raised])
                        for a in raised:
                            STREAM_ALERTS.labels(a.kind, a.group).inc()
                    except Exception:  # noqa: BLE001 - the watch must outlive a broker hiccup
                        log.exception("could not publish %d stream alerts", len(raised))
                await asyncio.sleep(settings.lag_interval_s)

        reader = asyncio.create_task(read_lag())
        try:
            yield
        finally:
            reader.cancel()
            REGISTRY.unregister(lag)
            publisher.close()
            producer.close()
            await client.close()

    app = FastAPI(
        title="leadflow API",
        version="0.1.0",
        description="Touchpoints in; One ID, clean leads, scores and follow-up tasks out. "
        "Authenticate with the X-Api-Key header.",
        lifespan=lifespan,
    )

    @app.exception_handler(RetryLater)
    async def busy(request: Request, exc: RetryLater):
        """A lease another writer held too long (the worker changing the same task or consultant)."""
        return JSONResponse({"detail": "busy with this record; retry shortly"}, status_code=503,
                            headers={"Retry-After": "1"})

    @app.middleware("http")
    async def measure(request: Request, call_next):
        # The body size limit is the outermost layer (services/gateway/body_limit.py), outside this app.
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        LATENCY.labels(request.method, path).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz", tags=["ops"])
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {}})
    async def readyz(request: Request):
        """200 once the store and the broker answer; 503 with what is missing otherwise."""
        db, producer = request.app.state.ready
        problems = []
        try:
            await db.command("ping")
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", said by name
            problems.append(f"store: {type(exc).__name__}")
        if not producer.connected():
            problems.append("broker: not connected")
        return JSONResponse({"status": "not ready" if problems else "ready", "problems": problems},
                            status_code=503 if problems else 200)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for module in (events, reads, identity, scores, tasks, dashboard, pages):
        app.include_router(module.router)
    return app
