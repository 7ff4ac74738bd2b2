"""Topic administration, the publisher SDK and the dead-letter policy against the real broker."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient
from pymongo.errors import DuplicateKeyError

from leadflow.runtime.admin import ensure_topics
from leadflow.runtime.consumer import DUPLICATE_KEY_ATTEMPTS, RecordProcessor
from leadflow.runtime.messages import Handled, Outgoing
from leadflow.sdk import Publisher
from schemas.dead_letters import DeadLetterHeaders
from schemas.topics import ALL_TOPICS, TOUCHPOINTS_IDENTIFIED, TOUCHPOINTS_RAW, dead_letter_topic
from schemas.touchpoints import TouchpointReceived
from tests.integration.kafka_kit import process_through_policy, read_all


def test_topics_are_created_once_with_explicit_partitions(infra, unique):
    prefix = f"it{unique}."
    created = ensure_topics(infra.kafka_bootstrap, prefix=prefix, partitions=3)
    assert sorted(created) == sorted(t.qualified(prefix) for t in ALL_TOPICS)
    assert ensure_topics(infra.kafka_bootstrap, prefix=prefix, partitions=3) == []
    admin = KafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([f"{prefix}touchpoints.raw", f"{prefix}touchpoints.raw.identity.dlq"])}
    finally:
        admin.close()
    assert described == {f"{prefix}touchpoints.raw": 3, f"{prefix}touchpoints.raw.identity.dlq": 1}


def test_publisher_validates_and_waits_for_acks(infra, unique):
    prefix = f"it{unique}."
    ensure_topics(infra.kafka_bootstrap, prefix=prefix, specs=(TOUCHPOINTS_RAW,))
    event = {"event_id": "p1", "event_type": "page_viewed", "occurred_at": "2026-11-22T10:00:00+08:00",
             "tenant_id": "t1", "source": {"system": "it", "channel": "web"}}
    with Publisher(infra.kafka_bootstrap, topic_prefix=prefix) as pub:
        pub.publish(event)
        try:
            pub.publish({**event, "event_type": "nope"})
            raise AssertionError("an invalid event was published")
        except ValueError:
            pass
    records = read_all(infra, f"{prefix}touchpoints.raw")
    assert [(r.key, TouchpointReceived.model_validate_json(r.value).event_id) for r in records] == [(b"t1:p1", "p1")]


async def test_processor_dead_letters_bad_records_and_emits_good_ones(infra, unique):
    prefix = f"it{unique}."
    ensure_topics(infra.kafka_bootstrap, prefix=prefix)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()

    async def send(topic, key, value, headers):
        await producer.send_and_wait(topic, value=value, key=key, headers=headers)

    processor = RecordProcessor(service="identity", source_topic="touchpoints.raw",
                                dead_letter_topic=f"{prefix}touchpoints.raw.identity.dlq", send=send, topic_prefix=prefix)
    handled: list[str] = []

    async def handle(event: TouchpointReceived) -> Handled:
        if event.event_id == "boom":
            raise KeyError("a bug")
        handled.append(event.event_id)
        return Handled([Outgoing(TOUCHPOINTS_IDENTIFIED, "k", event)])

    good = {"event_id": "ok", "event_type": "page_viewed", "occurred_at": "2026-11-22T10:00:00+08:00",
            "tenant_id": "t1", "source": {"system": "it", "channel": "web"}}
    records = [b"{oops", json.dumps({"event_id": 1}).encode(), json.dumps({**good, "event_id": "boom"}).encode(),
               json.dumps(good).encode()]
    try:
        for offset, value in enumerate(records):
            await processor.process(key=b"k", value=value, partition=0, offset=offset,
                                    decode=TouchpointReceived.from_bytes, handle=handle)
    finally:
        await producer.stop()

    assert handled == ["ok"]
    letters = [(r.value, DeadLetterHeaders.from_headers(r.headers)) for r in read_all(infra, f"{prefix}touchpoints.raw.identity.dlq")]
    assert [(h.reason, h.source_offset) for _, h in letters] == [
        ("invalid_json", 0), ("validation_error", 1), ("handler_error", 2)]
    assert [v for v, _ in letters] == records[:3]
    assert "event_type" in letters[1][1].error and "KeyError" in letters[2][1].error
    out = read_all(infra, f"{prefix}touchpoints.identified")
    assert [TouchpointReceived.model_validate_json(r.value).event_id for r in out] == ["ok"]


async def test_processor_retries_a_lost_upsert_race_and_dead_letters_a_duplicate_key_that_persists(infra, unique):
    """FerretDB v1 answers an upsert that lost a race with a duplicate key; the next attempt updates."""
    prefix = f"it{unique}."
    attempts: dict[str, int] = {}

    async def handle(event: TouchpointReceived) -> Handled:
        attempts[event.event_id] = attempts.get(event.event_id, 0) + 1
        if event.event_id == "always" or attempts[event.event_id] == 1:
            raise DuplicateKeyError("E11000 duplicate key error collection: it.leads", 11000)
        return Handled([Outgoing(TOUCHPOINTS_IDENTIFIED, "k", event)])

    good = {"event_type": "page_viewed", "occurred_at": "2026-11-22T10:00:00+08:00", "tenant_id": "t1",
            "source": {"system": "it", "channel": "web"}}
    records = [json.dumps({**good, "event_id": "raced"}).encode(), json.dumps({**good, "event_id": "always"}).encode()]
    await process_through_policy(infra, service="identity", source=TOUCHPOINTS_RAW, prefix=prefix,
                                 outputs=(TOUCHPOINTS_IDENTIFIED,), key=b"k", records=records,
                                 decode=TouchpointReceived.from_bytes, handle=handle)

    assert attempts == {"raced": 2, "always": DUPLICATE_KEY_ATTEMPTS}
    out = read_all(infra, f"{prefix}touchpoints.identified")
    assert [TouchpointReceived.model_validate_json(r.value).event_id for r in out] == ["raced"]
    [letter] = read_all(infra, dead_letter_topic(TOUCHPOINTS_RAW, "identity").qualified(prefix))
    headers = DeadLetterHeaders.from_headers(letter.headers)
    assert (letter.value, headers.reason, headers.source_offset) == (records[1], "handler_error", 1)
    assert headers.error.startswith("DuplicateKeyError")
