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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import murmur2


@dataclass(frozen=True)
class Held:
    """The partitions a worker holds now, and how many times it has gained one since it started."""

    partitions: frozenset[int]
    # Counted at every rebalance, not only when a timer asks: a partition lost and won back between
    # two timer runs is a gain too, since the worker that held it meanwhile may have died mid-run.
    gains: int


Owns = Callable[[str], bool]
Owned = Callable[[], Held | None]
# Due documents a timer reads per batch it wants: with several workers, the others' are skipped.
OVERFETCH = 4


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` (Java client and aiokafka alike)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def unpartitioned() -> Held | None:
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
        self._held: frozenset[int] = frozenset()
        self._gains = 0

    def assigned(self, sender: Any, assigned: Iterable[Any], **_: Any) -> None:
        """Faust's `on_partitions_assigned` signal, at every rebalance (connected by `Channels.ownership`)."""
        self._note(frozenset(tp.partition for tp in assigned if tp.topic == self.topic))

    @property
    def gains(self) -> int:
        """How many times this worker has gained a partition of the topic (rebalances seen so far)."""
        return self._gains

    def _note(self, partitions: frozenset[int]) -> None:
        if not partitions <= self._held:
            self._gains += 1
        self._held = partitions

    def owns(self, key: str) -> bool:
        partitions = self._partitions or self._consumer.topic_partitions(self.topic)
        if not partitions:
            return False  # not in the group yet: nothing is ours
        return partition_of(key, partitions) in self._assigned()

    def sole(self) -> bool:
        """Is every partition of `topic` assigned to this worker (so no other worker writes its persons)?
        False while it is not in the group yet, or cannot tell."""
        partitions = self._partitions or self._consumer.topic_partitions(self.topic)
        return bool(partitions) and len(self._assigned()) >= partitions

    def owned(self) -> Held:
        """The partitions assigned to this worker now, and its gains: a timer sweeps its agenda after each
        gain (`Agenda.sweep_needed`), since the worker that had the partition may have died mid-run. The
        consumer's assignment may show a rebalance's partitions before the signal does: both count."""
        self._note(self._assigned())
        return Held(self._held, self._gains)

    def _assigned(self) -> frozenset[int]:
        return frozenset(tp.partition for tp in self._consumer.assignment() if tp.topic == self.topic)
