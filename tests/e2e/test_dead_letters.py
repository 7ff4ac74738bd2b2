"""Undecodable records go to the dead-letter topic with their reason; the agent keeps going."""

from __future__ import annotations

import json

from kafka import KafkaConsumer, KafkaProducer

from schemas.dead_letters import DeadLetterHeaders
from schemas.topics import TOUCHPOINTS_RAW, dead_letter_topic
from tests.e2e.helpers import eventually, touchpoint, unique_phone


def test_bad_records_are_dead_lettered_and_the_stream_goes_on(stack):
    raw = TOUCHPOINTS_RAW.qualified(stack.topic_prefix)
    dlq = dead_letter_topic(TOUCHPOINTS_RAW, "identity").qualified(stack.topic_prefix)
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    def event(**changes) -> bytes:
        return json.dumps(touchpoint(tenant=stack.tenant) | changes, ensure_ascii=False).encode()

    def nested(levels: int) -> dict:
        value: dict = {}
        for _ in range(levels):
            value = {"x": value}
        return value

    bad_records = {
        b"not json at all": "invalid_json",
        b"\xff\xfe\x00garbage": "invalid_json",
        b"[1, 2, 3]": "validation_error",
        json.dumps({"event_id": "x", "event_type": "form_submitted"}).encode(): "validation_error",
        event(schema_version=99): "validation_error",
        event(event_type="telepathy"): "validation_error",
        event(occurred_at=12345): "validation_error",
        event(identifiers="13912345678"): "validation_error",
        event(occurred_at="2999-01-01T00:00:00+08:00"): "validation_error",
        event(occurred_at="1970-01-01T00:00:00+00:00"): "validation_error",
        event(attributes={"deep": nested(10)}): "validation_error",  # deeper than attributes may nest
        # Deeper than the JSON parser goes (written by hand: json.dumps itself would refuse).
        event(attributes={"deep": "@"}).replace(b'"@"', b'{"x": ' * 5_000 + b"{}" + b"}" * 5_000): "invalid_json",
        event(attributes={"note": "长" * 200_000}): "validation_error",
    }
    for value in bad_records:
        producer.send(raw, key=b"bad", value=value)
    phone = unique_phone()
    good = json.dumps(touchpoint(phone=phone, tenant=stack.tenant)).encode()
    producer.send(raw, key=b"bad", value=good)  # same key: same partition, behind the bad ones
    producer.flush()
    producer.close()

    ops = stack.client("ops")
    eventually(lambda: ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}).status_code == 200)

    consumer = KafkaConsumer(dlq, bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000)
    # This test's records only (key b"bad"): the consumer fuzz test dead-letters its own on this topic too.
    letters = {m.value: DeadLetterHeaders.from_headers(m.headers) for m in consumer if m.key == b"bad"}
    consumer.close()
    assert set(letters) == set(bad_records)
    for value, reason in bad_records.items():
        header = letters[value]
        assert header.reason == reason
        assert header.source_topic == "touchpoints.raw" and header.consumer == "identity"
        assert header.source_offset >= 0
    assert "schema_version" in letters[list(bad_records)[4]].error
    assert all(len(h.error) < 2_000 for h in letters.values())  # reasons, not echoes of the input
