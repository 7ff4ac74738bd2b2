"""A merge and an erasure decided by identity, honoured by leads, scoring and notify, through the API."""

from __future__ import annotations

import uuid

from tests.e2e.helpers import eventually, touchpoint, unique_phone


def resolve(client, kind: str, value: str) -> str | None:
    r = client.get("/v1/identity/resolve", params={"type": kind, "value": value})
    return r.json()["one_id"] if r.status_code == 200 else None


def send(ingest, event_type: str = "form_submitted", **kwargs) -> None:
    r = ingest.post("/v1/events", json=touchpoint(event_type, **kwargs))
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text


def test_two_leads_merge_into_one_with_one_open_task_and_then_are_erased_everywhere(stack):
    ops, ingest, admin = stack.client("ops"), stack.client("ingest"), stack.client("admin")
    store = f"store-{uuid.uuid4().hex[:8]}"
    consultant = f"c-{uuid.uuid4().hex[:8]}"
    ops.put(f"/v1/consultants/{consultant}", json={"name": "李雷", "store_id": store, "capacity": 50, "active": True})
    phone, union = unique_phone(), f"u-{uuid.uuid4().hex}"

    # Two persons as far as anybody can tell: a form with a phone, a mini-program form with a unionid.
    send(ingest, phone=phone, store_id=store)
    a = eventually(lambda: resolve(ops, "phone", phone))
    event = touchpoint("test_drive_booked", store_id=store)
    event["identifiers"] = [{"type": "wechat_unionid", "value": union}]
    assert ingest.post("/v1/events", json=event).json()["accepted"] == 1
    b = eventually(lambda: resolve(ops, "wechat_unionid", union))
    assert a != b
    eventually(lambda: ops.get("/v1/tasks", params={"one_id": a, "status": "open"}).json())
    eventually(lambda: ops.get(f"/v1/profiles/{b}").json().get("touchpoints") == 1)

    # The bridge: one touchpoint carrying both.
    bridge = touchpoint("price_inquired", store_id=store)
    bridge["identifiers"] = [{"type": "phone", "value": phone}, {"type": "wechat_unionid", "value": union}]
    assert ingest.post("/v1/events", json=bridge).json()["accepted"] == 1
    eventually(lambda: resolve(ops, "wechat_unionid", union) == a)

    # One lead with every touchpoint, one score history, at most one open task per consultant.
    profile = eventually(lambda: (p := ops.get(f"/v1/profiles/{b}").json()).get("touchpoints") == 3 and p)
    assert profile["one_id"] == a
    assert {c["signal"] for c in profile["explanation"]} >= {"test_drive_booked", "price_inquired"}
    open_tasks = ops.get("/v1/tasks", params={"one_id": a, "status": "open"}).json()
    assert [t["consultant_id"] for t in open_tasks] == [consultant]  # the store's only consultant, once
    assert not ops.get("/v1/tasks", params={"one_id": b, "status": "open"}).json()

    # Erasure: every service forgets the person.
    r = admin.delete(f"/v1/profiles/{a}")
    assert r.status_code == 202
    eventually(lambda: (s := ops.get(f"/v1/identity/commands/{r.json()['command_id']}")).status_code == 200
               and s.json()["status"] == "done")
    eventually(lambda: ops.get(f"/v1/profiles/{a}").status_code == 404)
    eventually(lambda: not ops.get("/v1/tasks", params={"one_id": a}).json())
    assert resolve(ops, "phone", phone) is None and resolve(ops, "wechat_unionid", union) is None
