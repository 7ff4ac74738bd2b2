"""Leads through the running stack: cleaned fields, verdicts with reasons, stage and history on the
profile; tag and reason filters; outcomes flowing back into the lifecycle; source quality for ops."""

from __future__ import annotations

import uuid

from tests.e2e.helpers import eventually, touchpoint, unique_phone


def resolve(ops, phone: str) -> str:
    return eventually(lambda: (r := ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}))
                      .status_code == 200 and r.json()["one_id"])


def test_the_profile_shows_cleaned_fields_verdict_stage_history_and_tags(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    phone = unique_phone()
    event = touchpoint(phone=phone, name=" 李娜😀 ", city="沪", car_model="modely", budget="25w左右", fill_seconds=40)
    assert ingest.post("/v1/events", json=event).status_code == 202
    one_id = resolve(ops, phone)
    profile = eventually(lambda: (p := ops.get(f"/v1/profiles/{one_id}").json()).get("touchpoints") == 1 and p)
    assert (profile["name"], profile["city"], profile["province"], profile["product"]) == ("李娜", "上海", "上海", "Model Y")
    assert profile["lead_status"] == "valid" and profile["route"] == "sales" and profile["stage"] == "lead"
    assert profile["budget_low"] < 250_000 < profile["budget_high"]
    assert "意向:Model Y" in profile["tags"]
    assert [(h["from"], h["to"], h["cause_type"]) for h in profile["history"]] == [(None, "lead", "touchpoint")]
    assert set(profile["stage_durations_s"]) == {"lead"} and profile["stage_durations_s"]["lead"] >= 0
    tagged = ops.get("/v1/leads", params={"tag": "意向:Model Y", "limit": 500}).json()
    assert one_id in {lead["one_id"] for lead in tagged}


def test_a_bot_form_is_suspect_with_its_reasons_and_goes_to_verification(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    phone = unique_phone()
    event = touchpoint(phone=phone, fill_seconds=0.4, name=f"王{uuid.uuid4().hex[:4]}")
    event["source"]["user_agent"] = "python-requests/2.31"
    assert ingest.post("/v1/events", json=event).status_code == 202
    one_id = resolve(ops, phone)
    profile = eventually(lambda: (p := ops.get(f"/v1/profiles/{one_id}").json()).get("touchpoints") == 1 and p)
    assert profile["lead_status"] == "suspect" and profile["route"] == "verification"
    assert {"bot_user_agent", "form_too_fast"} <= set(profile["reasons"])
    found = ops.get("/v1/leads", params={"reason": "bot_user_agent", "status": "suspect", "limit": 500}).json()
    assert one_id in {lead["one_id"] for lead in found}
    task = eventually(lambda: ops.get("/v1/tasks", params={"one_id": one_id}).json())[0]
    assert task["consultant_id"] is None and task["reason"] == "verify_suspect_lead" and task["queue"] == "verification"
    queued = ops.get("/v1/tasks", params={"queue": "verification", "limit": 500}).json()
    assert task["task_id"] in {t["task_id"] for t in queued}
    assert task["task_id"] not in {t["task_id"] for t in ops.get("/v1/tasks", params={"queue": "sales", "limit": 500}).json()}


def test_a_consultants_outcome_moves_the_lifecycle(stack):
    ops, ingest, consultant = stack.client("ops"), stack.client("ingest"), stack.client("consultant")
    ops.put("/v1/consultants/c-e2e-1", json={"name": "王芳", "store_id": "store-e2e-c1", "capacity": 1000, "active": True})
    phone = unique_phone()
    ingest.post("/v1/events", json=touchpoint(phone=phone, store_id="store-e2e-c1"))
    one_id = resolve(ops, phone)
    task = eventually(lambda: consultant.get("/v1/tasks", params={"one_id": one_id}).json())[0]
    r = consultant.post(f"/v1/tasks/{task['task_id']}/outcome", json={"outcome": "lost", "reason": "太贵"})
    assert r.status_code == 201, r.text
    profile = eventually(lambda: (p := ops.get(f"/v1/profiles/{one_id}").json())["stage"] == "lost" and p)
    assert profile["lost_reason"] == "price" and profile["stage_before"] == "lead"
    assert profile["owner"]["consultant_id"] == "c-e2e-1" and profile["owner"]["store_id"] == "store-e2e-c1"
    assert profile["history"][-1]["cause_type"] == "outcome" and profile["history"][-1]["detail"] == "price"


def test_ops_see_source_quality(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    channel = f"agency-{uuid.uuid4().hex[:6]}"
    events = []
    for n in range(3):
        event = touchpoint(phone=unique_phone(), fill_seconds=30)
        event["source"]["channel"] = channel
        events.append(event)
    junk = touchpoint(phone="13800138000")
    junk["source"]["channel"] = channel
    events.append(junk)
    assert ingest.post("/v1/events", json={"events": events}).status_code == 202

    def mine():
        body = ops.get("/v1/ops/sources", params={"hours": 2}).json()
        rows = [s for s in body["sources"] if (s["dimension"], s["value"]) == ("channel", channel)]
        return rows and rows[0]["counts"]["total"] == 4 and rows[0]

    row = eventually(mine)
    assert (row["counts"]["valid"], row["counts"]["junk"]) == (3, 1) and row["junk_rate"] == 0.25
    assert ops.get("/v1/ops/sources", params={"hours": 0}).status_code == 422
