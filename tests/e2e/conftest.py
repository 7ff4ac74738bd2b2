"""The whole stack for end-to-end tests: the four workers and the API as real processes, on topics
and a database of their own (unique prefix), against the session's broker and store."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from cryptography.fernet import Fernet

from leadflow.devstack import ROOT, WORKERS, StackConfig, down, start_services

KEYS = {
    "ingest": "e2e-ingest-key-a",
    "ops": "e2e-ops-key-aaaa",
    "admin": "e2e-admin-key-aa",
    "consultant": "e2e-consultant-a",
    "other_ops": "e2e-ops-key-bbbb",
    "other_ingest": "e2e-ingest-key-b",
    "fuzz_admin": "e2e-admin-key-fz",  # a tenant of its own: fuzzed writes touch nobody else's data
}


@dataclass(frozen=True)
class Stack:
    api_url: str
    kafka_bootstrap: str
    mongo_url: str
    mongo_db: str
    topic_prefix: str
    tenant: str
    other_tenant: str

    def client(self, role: str) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"X-Api-Key": KEYS[role]}, timeout=30)


@pytest.fixture(scope="session")
def stack(infra):
    run = uuid.uuid4().hex[:8]
    tenant, other = f"t{run}", f"u{run}"
    config = StackConfig(
        var=ROOT / "var" / "test" / "e2e",
        api_port=18000,
        worker_ports={"identity": 16101, "leads": 16102, "scoring": 16103, "notify": 16104, "identity-2": 16105},
        topic_prefix=f"e2e{run}.",
        mongo_db=f"e2e_{run}",
    )
    # The other tenant works on a fast clock: every deadline 4 s, the pool after ~26 s (notify's timer, 1 s).
    config.var.mkdir(parents=True, exist_ok=True)
    policy = config.var / "notify_policy.toml"
    days = ", ".join(f'{day} = ["00:00-24:00"]' for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    policy.write_text("\n".join([
        f"[tenants.{other}.hours]", f"days = {{ {days} }}",
        f"[tenants.{other}.sla]", 'H = "4s"', 'A = "4s"', 'B = "4s"', 'C = "4s"',
        f"[tenants.{other}.pool]", "return_after_days = 0.0003",
        f"[tenants.{tenant}.routing]", 'store_regions = { "store-east-1" = "华东", "store-east-2" = "华东" }', ""]),
        encoding="utf-8")
    env = {
        "LEADFLOW_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "LEADFLOW_MONGO_URL": infra.mongo_url,
        "LEADFLOW_MONGO_DB": config.mongo_db,
        "LEADFLOW_TOPIC_PREFIX": config.topic_prefix,
        "LEADFLOW_HMAC_SECRET": uuid.uuid4().hex,
        "LEADFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "LEADFLOW_API_PORT": str(config.api_port),
        # Low enough that a test can reach it with rejected events, high enough for every other test.
        "LEADFLOW_INGEST_RATE_PER_S": "100",
        "LEADFLOW_INGEST_BURST": "600",
        "LEADFLOW_RESCORE_INTERVAL_S": "2",  # the scoring timer: `leadflow rescore` finishes within seconds
        "LEADFLOW_NOTIFY_POLICY_FILE": str(policy),
        "LEADFLOW_NOTIFY_TIMER_INTERVAL_S": "1",
        "LEADFLOW_API_KEYS": ",".join([
            f"{KEYS['ingest']}={tenant}:ingest",
            f"{KEYS['ops']}={tenant}:ops",
            f"{KEYS['admin']}={tenant}:admin",
            f"{KEYS['consultant']}={tenant}:consultant:c-e2e-1",
            f"{KEYS['other_ops']}={other}:ops",
            f"{KEYS['other_ingest']}={other}:ingest",
            f"{KEYS['fuzz_admin']}=f{run}:admin",
        ]),
    }
    down(config, say=lambda line: None)  # leftovers of an interrupted run
    try:
        start_services(config, env, say=lambda line: None)
        yield Stack(config.api_url, infra.kafka_bootstrap, infra.mongo_url, config.mongo_db,
                    config.topic_prefix, tenant, other)
    finally:
        down(config, say=lambda line: None, names=("api", *WORKERS))
