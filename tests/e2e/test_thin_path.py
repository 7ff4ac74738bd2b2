"""The thin path through all four services, through the public API, against the real stack."""

from __future__ import annotations

import uuid

import httpx

from kafka import KafkaConsumer

from schemas.tasks import TaskOutcomeRecorded
from schemas.topics import TASKS_OUTCOMES
from tests.e2e.helpers import eventually, touchpoint, unique_phone


def spaced(phone: str) -> str:
    return f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"


def dashed(phone: str) -> str:
    return f"0086-{phone[:3]}-{phone[3:7]}-{phone[7:]}"


def test_form_becomes_a_task_for_an_active_consultant(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    consultant, store = f"c-{uuid.uuid4().hex[:8]}", f"store-{uuid.uuid4().hex[:8]}"  # a store of this test's own
    r = ops.put(f"/v1/consultants/{consultant}", json={"name": "王芳", "store_id": store, "capacity": 20, "active": True})
    assert r.status_code == 200, r.text
    phone = unique_phone()

    r = ingest.post("/v1/events", json=touchpoint(phone=phone, store_id=store))
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1

    one_id = eventually(lambda: ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}).json().get("one_id"))
    task = eventually(lambda: ops.get("/v1/tasks", params={"status": "open", "one_id": one_id}).json())
    assert task[0]["consultant_id"] == consultant
    assert task[0]["routing_rule"] == "same_store_least_loaded"

    profile = eventually(lambda: (p := ops.get(f"/v1/profiles/{one_id}").json()).get("grade") and p)
    assert profile["stage"] == "lead"
    assert profile["lead_status"] == "valid"
    assert profile["owner_consultant_id"] == consultant
    assert profile["identifiers"][0]["value"] == f"{phone[:3]}****{phone[-4:]}"
    assert phone not in ops.get(f"/v1/profiles/{one_id}").text  # masked by default
    assert any(c["label"] == "留资" for c in profile["explanation"])
    # The business as the workers count it, for dashboards and alerts.
    leads_metrics = httpx.get("http://127.0.0.1:16102/metrics").text
    assert f'leadflow_lead_verdicts_total{{channel="wechat_mp",tenant="{stack.tenant}",verdict="valid"}}' in leads_metrics
    assert f'leadflow_end_to_end_seconds_count{{tenant="{stack.tenant}"}}' in httpx.get("http://127.0.0.1:16104/metrics").text


def test_phone_spellings_share_one_id_and_a_duplicate_yields_one_task(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    phone = unique_phone()
    first = touchpoint(phone=phone)
    r = ingest.post("/v1/events", json={"events": [first, touchpoint("call_logged", phone=spaced(phone),
                                                                     direction="inbound", duration_s=95, connected=True)]})
    assert r.json()["accepted"] == 2, r.text
    r = ingest.post("/v1/events", json=first)  # the same event again
    assert r.status_code == 202 and r.json()["results"][0]["status"] == "duplicate"
    ingest.post("/v1/events", json=touchpoint("price_inquired", phone=dashed(phone)))

    one_id = eventually(lambda: ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}).json().get("one_id"))
    for spelling in (spaced(phone), dashed(phone), "８６" + phone):
        assert ops.get("/v1/identity/resolve", params={"type": "phone", "value": spelling}).json()["one_id"] == one_id
    eventually(lambda: ops.get(f"/v1/profiles/{one_id}").json()["touchpoints"] == 3)
    tasks = ops.get("/v1/tasks", params={"one_id": one_id}).json()
    assert len(tasks) == 1


def test_same_event_straight_to_kafka_twice_yields_one_task(stack):
    """Upstream may produce to touchpoints.raw directly; that path dedups like the API."""
    from leadflow.sdk import Publisher

    ops = stack.client("ops")
    phone = unique_phone()
    event = touchpoint(phone=phone, tenant=stack.tenant)
    with Publisher(stack.kafka_bootstrap, topic_prefix=stack.topic_prefix) as pub:
        pub.publish(event)
        pub.publish(event)
    one_id = eventually(lambda: ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}).json().get("one_id"))
    eventually(lambda: ops.get("/v1/tasks", params={"one_id": one_id}).json())
    # A later event of the same person proves the pipeline moved past both copies.
    ingest = stack.client("ingest")
    ingest.post("/v1/events", json=touchpoint("page_viewed", phone=phone))
    eventually(lambda: ops.get(f"/v1/profiles/{one_id}").json()["touchpoints"] == 2)
    assert len(ops.get("/v1/tasks", params={"one_id": one_id}).json()) == 1


def test_junk_number_never_reaches_a_consultant(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    marker = f"store-{uuid.uuid4().hex[:6]}"  # other tests add junk leads of their own to this tenant
    event = touchpoint(phone="13800138000", name="测试", store_id=marker)
    assert ingest.post("/v1/events", json=event).status_code == 202
    junk = eventually(lambda: [lead for lead in ops.get("/v1/leads", params={"status": "junk", "limit": 500}).json()
                               if lead["store_id"] == marker])
    assert junk[0]["reasons"] == ["test_number"] and junk[0]["route"] == "none"
    assert junk[0]["name"] is None and "name_placeholder" in junk[0]["problems"]  # 测试 is no name
    assert not ops.get("/v1/tasks", params={"one_id": junk[0]["one_id"]}).json()


def test_outcome_is_recorded_and_closes_the_task(stack):
    ops, ingest, consultant = stack.client("ops"), stack.client("ingest"), stack.client("consultant")
    # c-e2e-1 is the consultant the consultant key speaks for; its store is this test's own.
    ops.put("/v1/consultants/c-e2e-1", json={"name": "王芳", "store_id": "store-e2e-c1", "capacity": 1000, "active": True})
    phone = unique_phone()
    ingest.post("/v1/events", json=touchpoint(phone=phone, store_id="store-e2e-c1"))
    one_id = eventually(lambda: ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}).json().get("one_id"))
    task = eventually(lambda: consultant.get("/v1/tasks", params={"one_id": one_id}).json())[0]
    assert all(t["consultant_id"] == "c-e2e-1" for t in consultant.get("/v1/tasks").json())

    r = consultant.post(f"/v1/tasks/{task['task_id']}/outcome", json={"outcome": "won", "note": "签约"})
    assert r.status_code == 201, r.text
    outcome_id = r.json()["outcome_id"]
    consumer = KafkaConsumer(TASKS_OUTCOMES.qualified(stack.topic_prefix), bootstrap_servers=stack.kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    # The consumer fuzz test's junk shares the topic in this session (keys fuzz-…): read real records only.
    published = [TaskOutcomeRecorded.model_validate_json(m.value) for m in consumer
                 if not (m.key or b"").startswith(b"fuzz-")]
    consumer.close()
    mine = [o for o in published if o.outcome_id == outcome_id]
    assert len(mine) == 1 and mine[0].one_id == one_id and mine[0].outcome == "won"
    done = ops.get("/v1/tasks", params={"status": "done", "one_id": one_id}).json()
    assert done and done[0]["last_outcome"] == "won"
    assert consultant.post("/v1/tasks/nope/outcome", json={"outcome": "won"}).status_code == 404
