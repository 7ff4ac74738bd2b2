"""The newest records of the dead-letter topics, for the ops dashboard: why each record was refused, from
its headers, and whose tenant it was when its payload says so. Never the payload itself: it may carry
personal data as it came in."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from schemas.dead_letters import DeadLetterHeaders


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    offset: int
    at_ms: int
    reason: str
    error: str
    source_topic: str
    consumer: str
    tenant_id: str | None  # None: the payload does not say (not JSON, or no tenant_id)


MAX_PARSED = 1_000_000  # a dead letter may be anything: larger payloads are not opened


def _tenant_of(value: bytes | None) -> str | None:
    if not value or len(value) > MAX_PARSED:
        return None
    try:
        data = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):  # dead letters include JSON nested past the parser
        return None
    tenant = data.get("tenant_id") if isinstance(data, dict) else None
    return tenant if isinstance(tenant, str) else None


def latest_dead_letters(bootstrap: str, topics: list[str], per_partition: int = 20, timeout_ms: int = 1500) -> list[DeadLetter]:
    """The last `per_partition` records of each existing topic, newest first (blocking: run it in a thread)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=timeout_ms,
                             client_id="leadflow-dead-letter-tail")
    try:
        existing = consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics if t in existing for p in consumer.partitions_for_topic(t) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        wanted = 0
        for tp in partitions:
            start = max(0, ends[tp] - per_partition)
            wanted += ends[tp] - start
            consumer.seek(tp, start)
        found: list[DeadLetter] = []
        for record in consumer:
            try:
                headers = DeadLetterHeaders.from_headers(record.headers)
            except Exception:  # noqa: BLE001 - a record without our headers is still listed, with what we know
                headers = None
            found.append(DeadLetter(
                topic=record.topic, offset=record.offset, at_ms=record.timestamp,
                reason=headers.reason if headers else "unknown", error=headers.error if headers else "",
                source_topic=headers.source_topic if headers else "", consumer=headers.consumer if headers else "",
                tenant_id=_tenant_of(record.value)))
            if len(found) >= wanted:
                break
        return sorted(found, key=lambda d: -d.at_ms)
    finally:
        consumer.close()
