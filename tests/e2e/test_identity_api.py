"""Identity through the public API with two identity workers: explanations, conflicts, split, reveal, erasure."""

from __future__ import annotations

import uuid

from leadflow.devstack import ROOT
from tests.e2e.helpers import eventually, touchpoint, unique_phone


def ids(*pairs: tuple[str, str]) -> list[dict]:
    return [{"type": t, "value": v} for t, v in pairs]


def resolve(client, kind: str, value: str) -> str | None:
    r = client.get("/v1/identity/resolve", params={"type": kind, "value": value})
    return r.json()["one_id"] if r.status_code == 200 else None


def send(ingest, *pairs: tuple[str, str], **attrs) -> str:
    event = touchpoint(**attrs)
    event["identifiers"] = ids(*pairs)
    r = ingest.post("/v1/events", json=event)
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    return event["event_id"]


def done(ops, command_id: str) -> dict:
    return eventually(lambda: (r := ops.get(f"/v1/identity/commands/{command_id}")).status_code == 200 and r.json())


def test_a_wrong_merge_is_explained_and_split_apart(stack):
    ops, ingest, consultant = stack.client("ops"), stack.client("ingest"), stack.client("consultant")
    phone, union = unique_phone(), f"u-{uuid.uuid4().hex}"
    send(ingest, ("phone", phone))
    a = eventually(lambda: resolve(ops, "phone", phone))
    send(ingest, ("wechat_unionid", union), ("email", f"{union}@qq.com"))
    eventually(lambda: resolve(ops, "wechat_unionid", union))
    send(ingest, ("phone", phone), ("wechat_unionid", union))
    eventually(lambda: resolve(ops, "wechat_unionid", union) == a)

    told = ops.get(f"/v1/profiles/{a}/identity").json()
    kinds = {i["type"]: i for i in told["identifiers"]}
    assert set(kinds) == {"phone", "wechat_unionid", "email"}
    assert kinds["email"]["cause"]["rule"] == "co_occurred" and kinds["email"]["cause"]["via_type"] == "wechat_unionid"
    assert [m["cause_identifier_type"] for m in told["merges"]] == ["wechat_unionid"]
    assert phone not in str(told) and union not in str(told)
    assert consultant.get(f"/v1/profiles/{a}/identity").status_code == 403
    assert stack.client("other_ops").get(f"/v1/profiles/{a}/identity").status_code == 404

    move = [kinds["wechat_unionid"]["link_id"], kinds["email"]["link_id"]]
    r = ops.post("/v1/identity/split", json={"one_id": a, "link_ids": move, "reason": "两个人"},
                 headers={"Idempotency-Key": f"split-{union}"})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert done(ops, accepted["command_id"])["status"] == "done"
    assert resolve(ops, "wechat_unionid", union) == accepted["new_one_id"]
    assert resolve(ops, "phone", phone) == a
    # A retry with the same Idempotency-Key is the same command, carried out once.
    again = ops.post("/v1/identity/split", json={"one_id": a, "link_ids": move},
                     headers={"Idempotency-Key": f"split-{union}"})
    assert again.json()["command_id"] == accepted["command_id"]


def test_bad_split_requests_name_the_field(stack):
    ops = stack.client("ops")
    r = ops.post("/v1/identity/split", json={"one_id": "x", "link_ids": []})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "link_ids"
    assert stack.client("consultant").post("/v1/identity/split", json={"one_id": "x", "link_ids": ["a"]}).status_code == 403


def test_conflicts_are_listed_for_ops(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    c1, c2 = f"CRM-{uuid.uuid4().hex[:8]}", f"CRM-{uuid.uuid4().hex[:8]}"
    send(ingest, ("crm_id", c1))
    send(ingest, ("crm_id", c2))
    eventually(lambda: resolve(ops, "crm_id", c1) and resolve(ops, "crm_id", c2))
    bridge = send(ingest, ("crm_id", c1), ("crm_id", c2))
    conflict = eventually(lambda: [c for c in ops.get("/v1/identity/conflicts").json()["conflicts"]
                                   if c["event_id"] == bridge])
    assert conflict[0]["reason"] == "limit:crm_id"
    assert resolve(ops, "crm_id", c1) != resolve(ops, "crm_id", c2)


def test_reveal_is_audited_and_erasure_is_for_admins(stack):
    ops, ingest, admin = stack.client("ops"), stack.client("ingest"), stack.client("admin")
    phone = unique_phone()
    send(ingest, ("phone", phone))
    one_id = eventually(lambda: resolve(ops, "phone", phone))
    [link] = ops.get(f"/v1/profiles/{one_id}/identity").json()["identifiers"]

    assert ops.post(f"/v1/profiles/{one_id}/identifiers/{link['link_id']}/reveal", json={}).status_code == 422
    r = ops.post(f"/v1/profiles/{one_id}/identifiers/{link['link_id']}/reveal", json={"reason": "回拨客户"})
    assert r.status_code == 200 and r.json()["value"] == f"+86{phone}"
    audit = admin.get("/v1/audit/reveals").json()
    assert any(a["audit_id"] == r.json()["audit_id"] and a["reason"] == "回拨客户" and a["role"] == "ops" for a in audit)
    assert ops.get("/v1/audit/reveals").status_code == 403

    assert ops.delete(f"/v1/profiles/{one_id}").status_code == 403
    r = admin.delete(f"/v1/profiles/{one_id}")
    assert r.status_code == 202
    assert done(ops, r.json()["command_id"])["status"] == "done"
    assert resolve(ops, "phone", phone) is None
    assert ops.get(f"/v1/profiles/{one_id}/identity").status_code == 404


def test_a_possible_match_waits_in_the_review_queue_for_a_decision(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    c1, c2 = f"CRM-{uuid.uuid4().hex[:8]}", f"CRM-{uuid.uuid4().hex[:8]}"
    profile = {"name": "欧阳娜娜", "birth_date": "1991-02-03", "city": "深圳", "address": f"南山区{uuid.uuid4().hex[:6]}路1号"}
    send(ingest, ("crm_id", c1), **profile)
    a = eventually(lambda: resolve(ops, "crm_id", c1))
    send(ingest, ("crm_id", c2), **profile)
    b = eventually(lambda: resolve(ops, "crm_id", c2))
    assert a != b  # the same profile, but two CRM ids: never merged automatically

    [item] = eventually(lambda: [r for r in ops.get("/v1/identity/review").json() if {r["a"], r["b"]} == {a, b}])
    assert item["reason"] == "limit:crm_id" and item["a_profile"]["name"] == "欧***"
    assert "欧阳娜娜" not in ops.get("/v1/identity/review").text

    approve = ops.post(f"/v1/identity/review/{item['review_id']}", json={"approve": True})
    assert approve.status_code == 202
    assert done(ops, approve.json()["command_id"])["status"] == "rejected: limit:crm_id"
    reject = ops.post(f"/v1/identity/review/{item['review_id']}", json={"approve": False})
    assert done(ops, reject.json()["command_id"])["status"] == "done"
    assert not [r for r in ops.get("/v1/identity/review").json() if r["review_id"] == item["review_id"]]
    assert ops.post(f"/v1/identity/review/{item['review_id']}", json={"approve": "maybe"}).status_code == 422


def test_no_raw_identifier_reaches_any_log(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    phone, mail = unique_phone(), f"log-{uuid.uuid4().hex[:8]}@qq.com"
    send(ingest, ("phone", phone), ("email", mail))
    eventually(lambda: resolve(ops, "phone", phone))
    assert resolve(ops, "email", mail)  # look-ups put the value in the query string
    logs = ROOT / "var" / "test" / "e2e" / "log"
    written = {path.name: path.read_text(errors="replace") for path in logs.glob("*.log")}
    assert "api.log" in written and "identity.log" in written
    for name, text in written.items():
        assert phone not in text and mail not in text, f"{name} holds a raw identifier"


def test_two_identity_workers_share_four_or_more_partitions(stack):
    from kafka import KafkaAdminClient, KafkaConsumer

    group = f"{stack.topic_prefix}leadflow-identity"
    topic = f"{stack.topic_prefix}touchpoints.raw"
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    try:
        assert len(consumer.partitions_for_topic(topic)) >= 4
        members = eventually(lambda: (m := admin.describe_groups([group])[group]["members"]) and len(m) >= 2 and m)
        assert len(members) == 2
    finally:
        consumer.close()
        admin.close()
