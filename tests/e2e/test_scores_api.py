"""Scores through the running stack: the explanation in Chinese and English, consultants' outcomes
reaching scoring (a signal, a lesson for the model and the held-out report), and `leadflow rescore`
re-scoring a tenant through the running scoring worker."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.helpers import eventually, touchpoint, unique_phone


def resolve(ops, phone: str) -> str:
    return eventually(lambda: (r := ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}))
                      .status_code == 200 and r.json()["one_id"])


def test_a_score_says_why_in_chinese_and_in_english_and_only_to_its_tenant(stack):
    ops, ingest, other = stack.client("ops"), stack.client("ingest"), stack.client("other_ops")
    phone = unique_phone()
    assert ingest.post("/v1/events", json=touchpoint(phone=phone, fill_seconds=40)).status_code == 202
    assert ingest.post("/v1/events", json=touchpoint("test_drive_booked", phone=phone)).status_code == 202
    one_id = resolve(ops, phone)
    score = eventually(lambda: (r := ops.get(f"/v1/scores/{one_id}")).status_code == 200
                       and len(r.json()["explanation"]) >= 2 and r.json())
    texts = [line["text"] for line in score["explanation"]]
    assert any(t.startswith("留资 刚刚 +") for t in texts) and any(t.startswith("试驾预约 刚刚 +") for t in texts)
    assert score["rules"] == "car-dealer@1" and score["next_rescore_at"] is not None
    assert round(sum(line["points"] for line in score["explanation"]), 1) == score["score"]
    english = ops.get(f"/v1/scores/{one_id}", params={"lang": "en"}).json()
    assert any(line["text"].startswith("test drive booked just now +") for line in english["explanation"])
    profile = ops.get(f"/v1/profiles/{one_id}").json()
    assert {line["text"] for line in profile["explanation"]} == set(texts)
    assert other.get(f"/v1/scores/{one_id}").status_code == 404
    assert ops.get("/v1/scores/nobody").status_code == 404
    assert ops.get(f"/v1/scores/{one_id}", params={"lang": "fr"}).status_code == 422


def test_an_outcome_reaches_scoring_and_teaches_the_model(stack):
    ops, ingest, consultant = stack.client("ops"), stack.client("ingest"), stack.client("consultant")
    ops.put("/v1/consultants/c-e2e-1", json={"name": "王芳", "store_id": "store-e2e-s1", "capacity": 1000, "active": True})
    phone = unique_phone()
    ingest.post("/v1/events", json=touchpoint(phone=phone, store_id="store-e2e-s1", fill_seconds=40))
    one_id = resolve(ops, phone)
    task = eventually(lambda: consultant.get("/v1/tasks", params={"one_id": one_id}).json())[0]
    before = ops.get("/v1/scores/model").json()["outcomes_learned"]
    r = consultant.post(f"/v1/tasks/{task['task_id']}/outcome", json={"outcome": "lost", "reason": "太贵"})
    assert r.status_code == 201, r.text
    score = eventually(lambda: (s := ops.get(f"/v1/scores/{one_id}").json())["grade"] == "F" and s)
    assert "outcome:lost" in {line["signal"] for line in score["explanation"]}
    model = eventually(lambda: (m := ops.get("/v1/scores/model").json())["outcomes_learned"] > before and m)
    assert model["mode"] == "blend" and model["evaluated"] >= 1 and model["model_version"] >= 1
    assert set(model["auc"]) == {"rules", "model", "blend"} and model["calibration"]["rules"]["bins"]
    assert consultant.get("/v1/scores/model").status_code == 403  # ops only


def test_leadflow_rescore_re_scores_a_tenant_through_the_running_worker(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    phone = unique_phone()
    ingest.post("/v1/events", json=touchpoint(phone=phone, fill_seconds=40))
    one_id = resolve(ops, phone)
    eventually(lambda: ops.get(f"/v1/scores/{one_id}").status_code == 200)
    env = {**os.environ, "LEADFLOW_MONGO_URL": stack.mongo_url, "LEADFLOW_MONGO_DB": stack.mongo_db,
           "LEADFLOW_KAFKA_BOOTSTRAP": stack.kafka_bootstrap, "LEADFLOW_TOPIC_PREFIX": stack.topic_prefix}
    done = subprocess.run([sys.executable, "-m", "leadflow.cli", "rescore", "--tenant", stack.tenant, "--timeout", "60"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "queued for the scoring timer (rules car-dealer@1)" in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert "re-scored" in last and last.split("/")[0].strip() == last.split("/")[1].split()[0]  # n/n re-scored
    # Same rules: nothing really changed, so nothing was told.
    assert last.endswith(" 0 changes emitted")
