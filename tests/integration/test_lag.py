"""Consumer lag read from the real broker."""

from __future__ import annotations

from datetime import UTC, datetime

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

from leadflow.runtime.admin import ensure_topics
from leadflow.runtime.lag import LagCollector, consumer_lag, registry_groups
from leadflow.runtime.watch import StreamWatch
from leadflow.sdk import EventProducer
from schemas.ops import StreamAlerted
from schemas.topics import IDENTITY_COMMANDS, OPS_ALERTS, TOUCHPOINTS_RAW
from tests.integration.kafka_kit import read_all


def test_lag_is_end_minus_committed_per_partition(infra, unique):
    prefix = f"lag{unique}."
    ensure_topics(infra.kafka_bootstrap, prefix=prefix, partitions=2, specs=(TOUCHPOINTS_RAW,))
    topic = TOUCHPOINTS_RAW.qualified(prefix)
    producer = KafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    for i in range(5):
        producer.send(topic, value=b"x", partition=0)
    producer.send(topic, value=b"x", partition=1)
    producer.flush()
    producer.close()

    group = f"{prefix}leadflow-identity"
    assert registry_groups(prefix)[group] == [topic, IDENTITY_COMMANDS.qualified(prefix)]
    consumer = KafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})
    consumer.close()

    rows = {r.partition: r for r in consumer_lag(infra.kafka_bootstrap, {group: [topic]})}
    assert (rows[0].committed, rows[0].end, rows[0].lag) == (2, 5, 3)
    assert (rows[1].committed, rows[1].end, rows[1].lag) == (0, 1, 1)  # never committed: counts from 0


def test_the_collector_reports_lag_and_detects_a_stalled_consumer(infra, unique):
    prefix = f"stall{unique}."
    ensure_topics(infra.kafka_bootstrap, prefix=prefix, partitions=1, specs=(TOUCHPOINTS_RAW,))
    topic = TOUCHPOINTS_RAW.qualified(prefix)
    group = f"{prefix}leadflow-identity"
    producer = KafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    for _ in range(3):
        producer.send(topic, value=b"x", partition=0)
    producer.flush()
    consumer = KafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})

    now = [0.0]
    collector = LagCollector(infra.kafka_bootstrap, {group: [topic]}, stall_after_s=30, min_interval_s=0,
                             clock=lambda: now[0])

    def sample(name: str) -> float:
        families = {f.name: f for f in collector.collect()}
        [value] = [s.value for s in families[name].samples if s.labels["topic"] == topic]
        return value

    collector.refresh()
    assert (sample("leadflow_consumer_lag"), sample("leadflow_consumer_stalled")) == (2, 0)
    now[0] = 31.0  # the consumer is stuck: nothing committed for longer than the threshold
    collector.refresh()
    assert (sample("leadflow_consumer_lag"), sample("leadflow_consumer_stalled")) == (2, 1)

    snapshot = collector.snapshot()
    assert snapshot["groups"] == [{"group": group, "topic": topic, "lag": 2, "stalled": True}]

    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(3, "", -1)})  # it recovers
    for _ in range(18):  # and the topic moves on: 18 records in the 9 s to the next reading
        producer.send(topic, value=b"x", partition=0)
    producer.flush()
    now[0] = 40.0
    collector.refresh()
    assert (sample("leadflow_consumer_lag"), sample("leadflow_consumer_stalled")) == (18, 0)
    assert collector.snapshot()["topics"] == [{"topic": topic, "end": 21, "rate_per_s": 2.0}]
    consumer.close()
    producer.close()


def test_a_stalled_group_is_raised_on_ops_alerts(infra, unique):
    prefix = f"watch{unique}."
    ensure_topics(infra.kafka_bootstrap, prefix=prefix, partitions=1, specs=(TOUCHPOINTS_RAW, OPS_ALERTS))
    topic, group = TOUCHPOINTS_RAW.qualified(prefix), f"{prefix}leadflow-identity"
    producer = KafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    for _ in range(4):
        producer.send(topic, value=b"x", partition=0)
    producer.flush()
    producer.close()
    now = [0.0]
    collector = LagCollector(infra.kafka_bootstrap, {group: [topic]}, stall_after_s=30, min_interval_s=0,
                             clock=lambda: now[0])
    watch, raised = StreamWatch(), []
    for at in (0.0, 31.0, 62.0):  # nobody consumes: stalled from the second reading on
        now[0] = at
        collector.refresh()
        raised += watch.observe(collector.snapshot()["groups"], datetime(2026, 12, 1, 8, tzinfo=UTC))
    assert [(a.kind, a.group, a.lag) for a in raised] == [("consumer_stalled", group, 4)]
    events = EventProducer(infra.kafka_bootstrap)
    events.send_all([(OPS_ALERTS.qualified(prefix), a.group.encode(), a.to_bytes()) for a in raised])
    events.close()
    [record] = read_all(infra, OPS_ALERTS.qualified(prefix))
    assert StreamAlerted.model_validate_json(record.value).alert_id == raised[0].alert_id
