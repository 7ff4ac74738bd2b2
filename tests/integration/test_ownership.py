"""Timer ownership agrees with where the broker really puts a key: the partition `partition_of` names is
the one the producers' default partitioner picks (kafka-python here, aiokafka in the workers)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from kafka import KafkaProducer

from leadflow.runtime.admin import ensure_topics
from leadflow.runtime.ownership import PartitionOwnership, partition_of
from schemas.topics import TopicSpec


def test_partition_of_is_the_partition_the_producer_picks(infra, unique):
    spec = TopicSpec("owned", key="one_id", value=None, writer="test", partitions=8)
    ensure_topics(infra.kafka_bootstrap, prefix=f"own{unique}.", specs=(spec,), partitions=8)
    producer = KafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    keys = [str(uuid.uuid4()) for _ in range(64)]
    placed = {k: producer.send(spec.qualified(f"own{unique}."), key=k.encode(), value=b"{}").get(timeout=30).partition
              for k in keys}
    producer.close()
    assert placed == {k: partition_of(k, 8) for k in keys}
    assert len(set(placed.values())) > 4  # spread over the partitions, not one


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class Consumer:
    def __init__(self, assigned: set[int], partitions: int | None = 8) -> None:
        self.assigned, self.partitions = assigned, partitions

    def topic_partitions(self, topic: str) -> int | None:
        return self.partitions

    def assignment(self) -> set[TP]:
        return {TP("scores.changes", p) for p in self.assigned} | {TP("other", 0)}


def test_two_workers_own_every_key_exactly_once_and_none_before_joining():
    keys = [str(uuid.uuid4()) for _ in range(500)]
    first = PartitionOwnership(Consumer({0, 1, 2, 3}), "scores.changes").owns
    second = PartitionOwnership(Consumer({4, 5, 6, 7}), "scores.changes").owns
    assert all(first(k) != second(k) for k in keys)
    assert 150 < sum(map(first, keys)) < 350
    # Only the group leader's coordinator knows the partition count: the broker's, given at start-up, is used.
    follower = PartitionOwnership(Consumer({0, 1, 2, 3}, partitions=None), "scores.changes", 8).owns
    assert all(first(k) == follower(k) for k in keys)
    unjoined = PartitionOwnership(Consumer(set(), partitions=None), "scores.changes").owns
    assert not any(unjoined(k) for k in keys)


async def test_the_worker_wiring_counts_every_rebalance_faust_signals():
    """`Channels.ownership` listens to Faust's own signal, called as Faust calls it (the app as sender,
    then `signal=`): a receiver that raised there would crash the worker at every rebalance."""
    import faust
    from faust.types import TP as FaustTP

    from leadflow.runtime.worker import Channels
    from schemas.topics import SCORES_CHANGES

    app = faust.App("it-ownership", broker="kafka://127.0.0.1:1")
    ownership = Channels(app, "notify", "p.").ownership(SCORES_CHANGES)
    topic = SCORES_CHANGES.qualified("p.")
    await app.on_partitions_assigned.send({FaustTP(topic, 3), FaustTP("p.other", 1)})
    first = ownership.gains
    await app.on_partitions_assigned.send({FaustTP("p.other", 1)})
    await app.on_partitions_assigned.send({FaustTP(topic, 3)})
    assert (first, ownership.gains) == (1, 2)
