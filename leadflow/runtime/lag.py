"""Consumer lag of every leadflow consumer group, from the broker (kafka-python admin client).

For each (group, topic, partition): the committed offset, the end offset and the lag between them.
The groups and their topics come from the registry: `<prefix>leadflow-<service>` reads every topic
that names the service among its consumers.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from schemas.topics import TOPICS, consumer_group


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


def registry_groups(prefix: str = "") -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for spec in TOPICS:
        for consumer in spec.consumers:
            groups.setdefault(consumer_group(consumer, prefix), []).append(spec.qualified(prefix))
    return groups


def consumer_lag(bootstrap_servers: str, groups: dict[str, list[str]]) -> list[PartitionLag]:
    """Lag per partition; a partition the group never committed counts from offset 0."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="leadflow-lag")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, client_id="leadflow-lag", group_id=None)
    try:
        rows = []
        for group, topics in groups.items():
            committed = admin.list_group_offsets({group: None}).get(group, {})
            partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
            ends = consumer.end_offsets(partitions) if partitions else {}
            for tp in partitions:
                meta = committed.get(tp)
                offset = meta.offset if meta is not None and meta.offset >= 0 else 0
                rows.append(PartitionLag(group, tp.topic, tp.partition, offset, ends.get(tp, 0)))
        return rows
    finally:
        consumer.close()
        admin.close()
