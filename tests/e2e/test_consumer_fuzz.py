"""Every consumer of every topic, fed malformed records in bulk: each lands in that consumer's
dead-letter topic with a reason (a record read by three services is dead-lettered three times, once
by each), no real data changes, and no partition stalls: every group's committed offset passes the
junk. tests/e2e/test_dead_letters.py checks the reason given for each kind of junk one by one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pymongo import MongoClient

from leadflow.runtime.lag import consumer_lag
from schemas.dead_letters import DeadLetterHeaders
from schemas.topics import TOPICS, TopicSpec, consumer_group, dead_letter_topic
from tests.e2e.helpers import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
PER_TOPIC = 40


def examples_of(spec: TopicSpec) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((EXAMPLES / spec.value.__name__).glob("*.json"))]


def junk(rng: random.Random, example: dict, tenant: str) -> bytes | None:
    """One record no consumer may accept, drawn from the ways upstream bytes go wrong."""
    body = {**example, "tenant_id": tenant}
    kind = rng.randrange(10)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))  # noise
    if kind == 1:
        return json.dumps(body, ensure_ascii=False).encode()[:-rng.randrange(1, 20)]  # cut short
    if kind == 2:
        return json.dumps(body, ensure_ascii=False).encode().replace(b'"', b'"\xff', 1)  # invalid UTF-8
    if kind == 3:
        return json.dumps({k: v for k, v in body.items() if k != "tenant_id"}).encode()  # a field missing
    if kind == 4:
        return json.dumps({**body, "tenant_id": rng.choice([12345, ["a"], {"x": 1}, None, True])}).encode()
    if kind == 5:
        return json.dumps({**body, f"zz_{rng.randrange(1000)}": "新字段"}).encode()  # unknown field
    if kind == 6:
        return json.dumps(rng.choice([[], [body], "text", 42, None, {}])).encode()  # not an object of the model
    if kind == 7:
        return None  # a tombstone where events belong
    if kind == 8:
        padding = "长" * rng.randrange(100_000, 250_000)  # 0.3–0.75 MB: under the broker's 1 MB limit
        return json.dumps({**body, "padding": padding}, ensure_ascii=False).encode()
    depth = rng.randrange(2_000, 20_000)  # deeper than the parser goes
    return json.dumps(body).encode()[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"


def test_every_consumer_dead_letters_junk_in_bulk_and_no_partition_stalls(stack):
    rng = random.Random(20261202)
    tenant = f"fz{stack.tenant}"
    consumed = [spec for spec in TOPICS if spec.consumers]
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all", max_request_size=2_000_000)
    sent: dict[str, set[bytes]] = {}
    for spec in consumed:
        examples = examples_of(spec)
        keys = sent.setdefault(spec.name, set())
        for i in range(PER_TOPIC):
            key = f"fuzz-{spec.name}-{i}".encode()
            value = junk(rng, rng.choice(examples), tenant)
            producer.send(spec.qualified(stack.topic_prefix), key=key, value=value).get(timeout=30)
            keys.add(key)
    producer.close()

    # No stall: every group that reads these topics commits past the junk.
    groups = {consumer_group(c, stack.topic_prefix): [s.qualified(stack.topic_prefix) for s in consumed
                                                       if c in s.consumers]
              for s in consumed for c in s.consumers}
    eventually(lambda: sum(row.lag for row in consumer_lag(stack.kafka_bootstrap, groups)) == 0, timeout_s=120)

    for spec in consumed:
        for consumer in spec.consumers:
            letters = dead_letters(stack, dead_letter_topic(spec, consumer).qualified(stack.topic_prefix))
            ours = {k: h for k, h in letters.items() if k in sent[spec.name]}
            assert set(ours) == sent[spec.name], f"{consumer} on {spec.name}: {len(ours)} of {PER_TOPIC} dead-lettered"
            for header in ours.values():
                assert header.reason in {"invalid_json", "validation_error", "undecodable"}
                assert header.source_topic == spec.name and header.consumer == consumer
                assert 0 < len(header.error) < 2_000  # a reason, never an echo of the record

    # Nothing of the fuzz tenant reached the stores as if it were data.
    with MongoClient(stack.mongo_url) as client:
        db = client[stack.mongo_db]
        stored = {name: n for name in db.list_collection_names()
                  if (n := db[name].count_documents({"tenant_id": tenant}))}
    assert stored == {}


def dead_letters(stack, topic: str) -> dict[bytes, DeadLetterHeaders]:
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=None, consumer_timeout_ms=3000,
                             fetch_max_bytes=5_000_000, max_partition_fetch_bytes=5_000_000)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return {m.key: DeadLetterHeaders.from_headers(m.headers) for m in consumer}
    finally:
        consumer.close()
