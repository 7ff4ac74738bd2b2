"""Build a service's Faust app and run its worker.

Every service is its own Faust app (consumer group `<prefix>leadflow-<service>`), at-least-once,
agents with concurrency 1, topics created beforehand by `leadflow.runtime.admin` (never by Faust),
and a small web server with /healthz and /metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from leadflow.runtime import metrics
from leadflow.runtime.consumer import RecordProcessor
from leadflow.runtime.messages import Handled
from leadflow.runtime.ownership import PartitionOwnership, partition_count
from leadflow.runtime.settings import WorkerSettings
from schemas.topics import TopicSpec, consumer_group, dead_letter_topic

log = logging.getLogger(__name__)


def make_app(service: str, settings: WorkerSettings) -> faust.App:
    Path(settings.data_dir).parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    brokers = ";".join(f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(","))
    app = faust.App(
        consumer_group(service, settings.topic_prefix),
        broker=brokers,
        store="memory://",
        datadir=settings.data_dir,  # Faust's per-app directory; under var/, never the working directory
        processing_guarantee="at_least_once",
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 4),
        consumer_group_instance_id=settings.group_instance_id,
    )

    @app.page("/metrics")
    async def metrics_view(web, request):
        # aiohttp refuses a charset inside content_type; Prometheus reads UTF-8 text by default.
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0] + "; version=0.0.4")

    @app.page("/healthz")
    async def healthz_view(web, request):
        return web.json({"status": "ok", "service": service})

    return app


def add_readiness(app: faust.App, service: str, db) -> None:
    """GET /readyz: 200 once the store answers and the consumer has joined its group, else 503 and why."""

    @app.page("/readyz")
    async def readyz_view(web, request):
        problems = []
        try:
            await db.command("ping")
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", said by name
            problems.append(f"store: {type(exc).__name__}")
        if app.rebalancing:
            problems.append("consumer: rebalancing")
        elif not app.consumer_generation_id or app.consumer_generation_id < 0:
            problems.append("consumer: not in its group yet")
        body = {"status": "not ready" if problems else "ready", "service": service, "problems": problems,
                "partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())}
        return web.json(body, status=503 if problems else 200)


class Channels:
    """The topics one service reads and writes, bound to its app; raw bytes in and out."""

    def __init__(self, app: faust.App, service: str, prefix: str, *, bootstrap: str = "") -> None:
        self.app = app
        self.service = service
        self.prefix = prefix
        self.bootstrap = bootstrap  # for the partition counts of `ownership`; empty in tests without a broker

    def source(self, spec: TopicSpec) -> faust.TopicT:
        return self.app.topic(spec.qualified(self.prefix), key_serializer="raw", value_serializer="raw")

    async def send(self, topic: str, key: bytes | None, value: bytes, headers) -> None:
        # Wait for the broker's ack: the source offset may only move once the output is durable.
        # The producer directly, not Topic.send: that path queues through Faust's send buffer.
        await self.app.producer.send_and_wait(topic, key, value, partition=None, timestamp=None, headers=headers)

    def consume(
        self,
        spec: TopicSpec,
        *,
        decode: Callable[[bytes], Any],
        handle: Callable[[Any], Awaitable[Handled]],
        name: str,
    ) -> None:
        """Register the agent that feeds every record of `spec` through the consumer policy."""
        processor = self.processor(spec)

        @self.app.agent(self.source(spec), concurrency=1, name=name)
        async def agent(stream):
            async for record in stream.events():
                await processor.process(
                    key=record.key,
                    value=record.value,
                    partition=record.message.partition,
                    offset=record.message.offset,
                    decode=decode,
                    handle=handle,
                )

    def ownership(self, spec: TopicSpec) -> PartitionOwnership:
        """Which of `spec`'s partitions are this worker's: the keys its timers may act on (`owns`), and
        whether it has them all (`sole`: no other worker writes its persons)."""
        topic = spec.qualified(self.prefix)
        count = partition_count(self.bootstrap, topic) if self.bootstrap else None
        ownership = PartitionOwnership(self.app.consumer, topic, count)
        self.app.on_partitions_assigned.connect(ownership.assigned)
        return ownership

    def every(self, seconds: float, handle: Callable[[], Awaitable[Handled]], *, name: str) -> None:
        """Run `handle` every `seconds` and emit what it returns. A failed run is logged and counted;
        the next run picks up whatever it left (timer work must be idempotent and found from the store)."""
        emitter = RecordProcessor(service=self.service, source_topic=f"timer:{name}", dead_letter_topic="",
                                  send=self.send, topic_prefix=self.prefix)

        @self.app.timer(seconds, name=name, on_leader=False)
        async def timer() -> None:
            try:
                handled = await handle()
                for out in handled.outgoing:
                    await emitter.emit(out)
                if handled.after_emit is not None:
                    await handled.after_emit()
                metrics.TIMER_RUNS.labels(self.service, "ok").inc()
            except Exception:  # noqa: BLE001 - a timer must survive one bad run
                log.exception("%s: timer %s failed", self.service, name)
                metrics.TIMER_RUNS.labels(self.service, "error").inc()

    def processor(self, spec: TopicSpec) -> RecordProcessor:
        return RecordProcessor(
            service=self.service,
            source_topic=spec.name,
            dead_letter_topic=dead_letter_topic(spec, self.service).qualified(self.prefix),
            send=self.send,
            topic_prefix=self.prefix,
        )


def quiet_worker(app: faust.App, loglevel: str):
    """Faust's Worker without its terminal spinner. At WARNING and above the spinner sets the root logger
    to DEBUG so that every record spins it: every debug call of aiokafka and Faust then builds its
    record (14% of a busy worker's CPU, sampled with py-spy in `bench.stateful_floor`), only for the
    handler to drop it. Workers log to files, where a spinner shows nothing."""
    from faust.worker import Worker

    class QuietWorker(Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            self.spinner = None
            super().on_setup_root_logger(logger, level)

    return QuietWorker(app, loglevel=loglevel)


def run(app: faust.App, settings: WorkerSettings) -> None:
    """Run the worker in this process until SIGTERM/SIGINT."""
    logging.getLogger("faust").setLevel(settings.log_level)
    quiet_worker(app, settings.log_level).execute_from_commandline()
