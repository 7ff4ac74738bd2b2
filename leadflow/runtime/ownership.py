"""Which persons a worker's timers may act on, when a service runs as several workers.

Records are spread over a service's workers by Kafka partition, but a timer finds its work in the
store (tasks past their deadline, persons due for a re-score), where every worker sees every
document. Two workers acting on one document would each read it, decide and write: a task
reassigned twice, a push sent twice. So a timer acts only on the keys whose partition of the
service's main input topic this worker is assigned, the partition the key's records go to (the
producers' default partitioner: murmur2 of the key). Each key has one owner at a time; a rebalance
moves ownership along with the partition.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka.partitioner import murmur2

Owns = Callable[[str], bool]
Owned = Callable[[], frozenset[int] | None]
# Due documents a timer reads per batch it wants: with several workers, the others' are skipped.
OVERFETCH = 4


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` (Java client and aiokafka alike)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def unpartitioned() -> frozenset[int] | None:
    """A worker alone (tests, tools): it holds no partitions, it has everything."""
    return None


def everything(key: str) -> bool:
    """A worker alone (tests, tools): it owns every key."""
    return True


def partition_count(bootstrap: str, topic: str) -> int | None:
    """The topic's partitions, asked of the broker (at start-up: the count the producers use)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="leadflow-ownership")
    try:
        return len(consumer.partitions_for_topic(topic) or ()) or None
    finally:
        consumer.close()


class PartitionOwnership:
    """`owns(key)`: is the key's partition of `topic` assigned to this worker right now?

    The partition count comes from the broker at start-up (`partitions`); the group coordinator's
    metadata, the fallback, is filled in on the group leader only. Adding partitions to a topic moves
    keys between partitions: restart the workers after doing it."""

    def __init__(self, consumer, topic: str, partitions: int | None = None) -> None:
        self._consumer, self.topic, self._partitions = consumer, topic, partitions

    def owns(self, key: str) -> bool:
        partitions = self._partitions or self._consumer.topic_partitions(self.topic)
        if not partitions:
            return False  # not in the group yet: nothing is ours
        return partition_of(key, partitions) in self.owned()

    def sole(self) -> bool:
        """Is every partition of `topic` assigned to this worker (so no other worker writes its persons)?
        False while it is not in the group yet, or cannot tell."""
        partitions = self._partitions or self._consumer.topic_partitions(self.topic)
        return bool(partitions) and len(self.owned()) >= partitions

    def owned(self) -> frozenset[int]:
        """The partitions assigned to this worker now: a timer sweeps its agenda when it gains one
        (`Agenda.sweep_needed`), since the worker that had it may have died mid-run."""
        return frozenset(tp.partition for tp in self._consumer.assignment() if tp.topic == self.topic)
