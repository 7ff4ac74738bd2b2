"""Notify through the running stack, on the other tenant's fast clock (conftest: every deadline 4 s, the
pool after ~26 s, notify's timer every second): a missed deadline reassigns once and tells the store
manager; the unanswered lead returns to the shared pool, and a consultant claims it; the inbox holds the
pushes; managers see performance."""

from __future__ import annotations

import uuid

from tests.e2e.helpers import eventually, touchpoint, unique_phone


def test_a_lead_nobody_calls_escalates_then_returns_to_the_pool_and_is_claimed(stack):
    ops, ingest = stack.client("other_ops"), stack.client("other_ingest")
    store = f"store-{uuid.uuid4().hex[:6]}"
    for cid, manager in (("u-c1", False), ("u-c2", False), ("u-m1", True)):
        r = ops.put(f"/v1/consultants/{cid}", json={"name": cid, "store_id": store, "capacity": 100, "active": True,
                                                    "manager": manager, "on_duty": not manager})
        assert r.status_code == 200, r.text
    phone = unique_phone()
    assert ingest.post("/v1/events", json=touchpoint(phone=phone, store_id=store, fill_seconds=40)).status_code == 202
    one_id = eventually(lambda: (r := ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}))
                        .status_code == 200 and r.json()["one_id"])
    task = eventually(lambda: ops.get("/v1/tasks", params={"one_id": one_id}).json())[0]
    first = task["consultant_id"]
    assert first in ("u-c1", "u-c2") and "负载最低" in task["routing_why"]

    # 4 s later the deadline is missed: reassigned once, the manager told; then marked breached.
    moved = eventually(lambda: (t := ops.get("/v1/tasks", params={"one_id": one_id}).json()[0])["breached_at"] and t,
                       timeout_s=30)
    assert moved["consultant_id"] != first and moved["previous_consultant_id"] == first
    assert moved["escalated_to"] == ["u-m1"] and [a["cause"] for a in moved["assignments"]] == ["created", "sla_breach"]
    assert eventually(lambda: ops.get("/v1/inbox", params={"consultant_id": "u-m1"}).json())[0]["task_id"] == task["task_id"]
    pushes = eventually(lambda: (p := ops.get(f"/v1/tasks/{task['task_id']}/pushes").json())
                        and all(x["status"] == "sent" for x in p) and p)
    assert {p["channel"] for p in pushes} == {"inbox"} and len(pushes) >= 3  # first, reassigned (+ manager), breached

    # Nobody answered: back to the pool, and a consultant claims it (not the one it was taken from).
    pooled = eventually(lambda: (t := ops.get("/v1/tasks", params={"one_id": one_id}).json()[0])["queue"] == "pool" and t,
                        timeout_s=60)
    assert pooled["consultant_id"] is None
    claimer = "u-c1" if pooled["previous_consultant_id"] == "u-c2" else "u-c2"
    refused = ops.post(f"/v1/pool/{task['task_id']}/claim", params={"consultant_id": pooled["previous_consultant_id"]})
    assert refused.status_code == 409 and refused.json()["detail"]["reason"] == "cooldown"
    claimed = ops.post(f"/v1/pool/{task['task_id']}/claim", params={"consultant_id": claimer})
    assert claimed.status_code == 200, claimed.text
    after = ops.get("/v1/tasks", params={"one_id": one_id}).json()[0]
    assert (after["queue"], after["consultant_id"]) == ("sales", claimer) and after["protected_until"]
    again = ops.post(f"/v1/pool/{task['task_id']}/claim", params={"consultant_id": claimer})
    assert again.status_code == 409 and again.json()["detail"]["reason"] == "not_in_pool"

    performance = ops.get("/v1/consultants/performance").json()
    assert {p["consultant_id"] for p in performance} >= {claimer}
    assert stack.client("ops").get("/v1/tasks", params={"one_id": one_id}).json() == []  # tenant A sees nothing
