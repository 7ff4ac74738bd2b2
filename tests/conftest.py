"""Where the real broker and store come from, in this order:
1. LEADFLOW_KAFKA_BOOTSTRAP and LEADFLOW_MONGO_URL, when both are set;
2. testcontainers, when a Docker engine answers (Kafka and MongoDB images);
3. otherwise the project's own deploy/local stack under var/test, on ports of its own
   (19092/19093 broker, 27018 store), started here and stopped at the end of the session
   (unless it was already running: `python -m tests.infra` starts it for a debugging session).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

from leadflow.devstack import ROOT, Processes, StackConfig, down, up


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    mongo_url: str


TEST_STACK = StackConfig(var=ROOT / "var" / "test", kafka_port=19092, controller_port=19093, store_port=27018)


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False


@pytest.fixture(scope="session")
def infra():
    env = os.environ
    if env.get("LEADFLOW_KAFKA_BOOTSTRAP") and env.get("LEADFLOW_MONGO_URL"):
        yield Infra(env["LEADFLOW_KAFKA_BOOTSTRAP"], env["LEADFLOW_MONGO_URL"])
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.mongodb import MongoDbContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka, MongoDbContainer("mongo:7") as mongo:
            yield Infra(kafka.get_bootstrap_server(), mongo.get_connection_url())
        return
    procs = Processes(TEST_STACK)
    running_before = bool(procs.pid("kafka") and procs.pid("store"))
    up(TEST_STACK, infra_only=True, say=lambda line: None)
    try:
        yield Infra(TEST_STACK.kafka_bootstrap, TEST_STACK.mongo_url)
    finally:
        if not running_before:  # leave a stack somebody started by hand as it was
            down(TEST_STACK, say=lambda line: None, names=("store", "kafka"))


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
