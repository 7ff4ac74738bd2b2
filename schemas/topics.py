"""The registry of topics: every topic leadflow uses, declared once with its key, value model and writer.

Names are qualified by an optional prefix (`LEADFLOW_TOPIC_PREFIX`) so that test runs can use their
own topics on a shared broker; nothing else may spell a topic name.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas.identity import IdentityChanged, IdentityCommanded, TouchpointIdentified
from schemas.leads import LeadUpdated, SourceAlerted
from schemas.ops import StreamAlerted
from schemas.scores import ScoreChanged
from schemas.tasks import TaskCreated, TaskOutcomeRecorded
from schemas.touchpoints import TouchpointReceived

DEFAULT_PARTITIONS = 4


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    value: type[BaseModel] | None
    writer: str
    consumers: tuple[str, ...] = ()
    partitions: int = DEFAULT_PARTITIONS
    doc: str = ""

    def qualified(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


TOUCHPOINTS_RAW = TopicSpec(
    "touchpoints.raw",
    key="any (upstream's choice; the gateway uses tenant_id:event_id)",
    value=TouchpointReceived,
    writer="upstream",  # upstream systems directly, or the gateway on their behalf
    consumers=("identity",),
    doc="Touchpoint envelopes as JSON, exactly as upstream sent them.",
)
TOUCHPOINTS_IDENTIFIED = TopicSpec(
    "touchpoints.identified",
    key="one_id",
    value=TouchpointIdentified,
    writer="identity",
    consumers=("leads",),
)
IDENTITY_MERGES = TopicSpec(
    "identity.merges",
    key="one_id (the winner of a merge, the source of a split, the erased person)",
    value=IdentityChanged,
    writer="identity",
    consumers=("leads", "scoring", "notify"),
    doc="Merges, splits and erasures; each downstream service folds, moves or deletes its own state.",
)
IDENTITY_COMMANDS = TopicSpec(
    "identity.commands",
    key="tenant_id",
    value=IdentityCommanded,
    writer="gateway",
    consumers=("identity",),
    partitions=1,
    doc="Ops commands: split a person, decide a possible match, erase a person. Rare; one partition keeps them in order.",
)
LEADS_CHANGES = TopicSpec(
    "leads.changes", key="one_id", value=LeadUpdated, writer="leads", consumers=("scoring",)
)
SCORES_CHANGES = TopicSpec(
    "scores.changes", key="one_id", value=ScoreChanged, writer="scoring", consumers=("notify",)
)
LEADS_ALERTS = TopicSpec(
    "leads.alerts",
    key="tenant_id",
    value=SourceAlerted,
    writer="leads",
    partitions=1,
    doc="Sources whose junk and suspect rate jumped above baseline; for ops dashboards and alerting.",
)
TASKS_EVENTS = TopicSpec(
    "tasks.events", key="one_id", value=TaskCreated, writer="notify", consumers=("leads",),
    doc="Tasks created; leads learns who owns a person from the first assigned one.",
)
TASKS_OUTCOMES = TopicSpec(
    "tasks.outcomes", key="one_id", value=TaskOutcomeRecorded, writer="notify", consumers=("leads", "scoring"),
    doc="Consultant outcomes; leads moves the lifecycle and marks invalid numbers; scoring learns from them.",
)

OPS_ALERTS = TopicSpec(
    "ops.alerts",
    key="group",
    value=StreamAlerted,
    writer="gateway",  # the API's lag watcher (leadflow/runtime/watch.py)
    partitions=1,
    doc="Stream alerts: a consumer group stalled or falling behind; for paging and chat hooks.",
)

TOPICS: tuple[TopicSpec, ...] = (
    TOUCHPOINTS_RAW,
    TOUCHPOINTS_IDENTIFIED,
    IDENTITY_MERGES,
    IDENTITY_COMMANDS,
    LEADS_CHANGES,
    LEADS_ALERTS,
    SCORES_CHANGES,
    TASKS_EVENTS,
    TASKS_OUTCOMES,
    OPS_ALERTS,
)


def consumer_group(consumer: str, prefix: str = "") -> str:
    """The Kafka consumer group (and Faust app id) of a consuming service."""
    return f"{prefix}leadflow-{consumer}"


def dead_letter_topic(source: TopicSpec, consumer: str) -> TopicSpec:
    """The dead-letter topic of one consumer of `source`; that consumer is its only writer."""
    if consumer not in source.consumers:
        raise ValueError(f"{consumer} does not consume {source.name}")
    return TopicSpec(
        f"{source.name}.{consumer}.dlq",
        key="the original key",
        value=None,
        writer=consumer,
        partitions=1,
        doc="Original bytes; reason, source topic, partition and offset in leadflow.dlq.* headers.",
    )


DEAD_LETTER_TOPICS: tuple[TopicSpec, ...] = tuple(
    dead_letter_topic(t, c) for t in TOPICS for c in t.consumers
)
ALL_TOPICS: tuple[TopicSpec, ...] = TOPICS + DEAD_LETTER_TOPICS
