"""Topic administration with kafka-python: create every registered topic with explicit partitions."""

from __future__ import annotations

import time

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.topics import ALL_TOPICS, TopicSpec


def ensure_topics(
    bootstrap_servers: str,
    *,
    prefix: str = "",
    partitions: int | None = None,
    replication_factor: int = 1,
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
    wait_s: float = 60.0,
) -> list[str]:
    """Create missing topics; return the names created. Existing topics are left as they are."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="leadflow-admin")
            break
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    try:
        existing = set(admin.list_topics())
        created = []
        for spec in specs:
            name = spec.qualified(prefix)
            if name in existing:
                continue
            count = spec.partitions if spec.partitions == 1 or partitions is None else partitions
            try:
                admin.create_topics([NewTopic(name, num_partitions=count, replication_factor=replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another process won the race
        _wait_for_metadata(admin, {s.qualified(prefix) for s in specs}, deadline)
        return created
    finally:
        admin.close()


def _wait_for_metadata(admin: KafkaAdminClient, names: set[str], deadline: float) -> None:
    while True:
        try:
            if names <= set(admin.list_topics()):
                return
        except KafkaError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not visible in metadata: {sorted(names)}")
        time.sleep(0.2)
