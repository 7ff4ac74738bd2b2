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


class StallDetector:
    """Flags a partition as stalled when its committed offset has not moved for `after_s` while it lags.

    Pure bookkeeping over successive lag readings; the clock is passed in, so tests need no sleeping.
    """

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._since: dict[tuple[str, str, int], tuple[int, float]] = {}

    def observe(self, rows: list[PartitionLag], now: float) -> dict[tuple[str, str, int], bool]:
        stalled = {}
        for row in rows:
            key = (row.group, row.topic, row.partition)
            committed, since = self._since.get(key, (None, now))
            if committed != row.committed or row.lag == 0:
                since = now  # moving, or nothing to do: the clock restarts
            self._since[key] = (row.committed, since)
            stalled[key] = row.lag > 0 and now - since >= self.after_s
        return stalled


class LagCollector:
    """Prometheus collector: lag, committed and end offsets and a stalled flag per group and partition.

    `refresh()` reads the broker (blocking: run it in a thread, e.g. every `min_interval_s`); a scrape
    only reports the last reading, so /metrics never waits on the broker.
    """

    def __init__(self, bootstrap_servers: str, groups: dict[str, list[str]], *, stall_after_s: float = 300.0,
                 min_interval_s: float = 10.0, clock=None) -> None:
        import time

        self._bootstrap = bootstrap_servers
        self._groups = groups
        self._clock = clock or time.monotonic
        self._min_interval_s = min_interval_s
        self._stalls = StallDetector(stall_after_s)
        self._read_at: float | None = None
        self._rows: list[PartitionLag] = []
        self._stalled: dict[tuple[str, str, int], bool] = {}
        self._rates: dict[str, float] = {}
        self.last_error: str | None = None

    def refresh(self) -> None:
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self._min_interval_s:
            return
        try:
            rows = consumer_lag(self._bootstrap, self._groups)
            self.last_error = None
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the broker is away
            self.last_error = type(exc).__name__
            return
        previous, previous_at = self._ends(), self._read_at
        self._rows = rows
        self._read_at = now
        self._stalled = self._stalls.observe(self._rows, now)
        if previous_at is not None and now > previous_at:
            # Records appended per second since the last reading, per topic (all partitions).
            self._rates = {t: max(0, end - previous.get(t, end)) / (now - previous_at) for t, end in self._ends().items()}

    def _ends(self) -> dict[str, int]:
        ends: dict[tuple[str, int], int] = {}
        for row in self._rows:  # a topic read by several groups appears once per group: count it once
            ends[(row.topic, row.partition)] = row.end
        totals: dict[str, int] = {}
        for (topic, _), end in ends.items():
            totals[topic] = totals.get(topic, 0) + end
        return totals

    def snapshot(self) -> dict:
        """The last reading, for the ops dashboard: per group and topic the lag and whether it stalled, and
        per topic the records appended per second since the reading before."""
        groups: dict[tuple[str, str], dict] = {}
        for row in self._rows:
            g = groups.setdefault((row.group, row.topic), {"group": row.group, "topic": row.topic, "lag": 0, "stalled": False})
            g["lag"] += row.lag
            g["stalled"] = g["stalled"] or bool(self._stalled.get((row.group, row.topic, row.partition)))
        return {"read_at_monotonic": self._read_at, "error": self.last_error, "groups": list(groups.values()),
                "topics": [{"topic": t, "end": end, "rate_per_s": round(self._rates.get(t, 0.0), 2)}
                           for t, end in sorted(self._ends().items())]}

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        labels = ["group", "topic", "partition"]
        lag = GaugeMetricFamily("leadflow_consumer_lag", "Records behind the end offset", labels=labels)
        committed = GaugeMetricFamily("leadflow_consumer_committed_offset", "Committed offset", labels=labels)
        end = GaugeMetricFamily("leadflow_consumer_end_offset", "End offset of the partition", labels=labels)
        stalled = GaugeMetricFamily(
            "leadflow_consumer_stalled", "1 when the committed offset has not moved for a while despite lag",
            labels=labels)
        for row in self._rows:
            key = [row.group, row.topic, str(row.partition)]
            lag.add_metric(key, row.lag)
            committed.add_metric(key, row.committed)
            end.add_metric(key, row.end)
            stalled.add_metric(key, 1.0 if self._stalled.get((row.group, row.topic, row.partition)) else 0.0)
        yield from (lag, committed, end, stalled)
