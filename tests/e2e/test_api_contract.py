"""Bad input, keys and tenants at the API boundary, against the running stack."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import eventually, touchpoint, unique_phone


def test_invalid_event_is_rejected_naming_the_field_and_not_published(stack):
    ingest, ops = stack.client("ingest"), stack.client("ops")
    phone = unique_phone()
    bad = touchpoint("call_logged", phone=phone, direction="sideways", duration_s=10, connected=True)
    r = ingest.post("/v1/events", json=bad)
    assert r.status_code == 422
    result = r.json()["results"][0]
    assert result["status"] == "rejected"
    assert ["attributes", "direction"] in [e["loc"] for e in result["errors"]]
    assert phone not in r.text  # errors never echo the input

    r = ingest.post("/v1/events", json={"events": [touchpoint(phone=unique_phone()), {"event_type": "nope"}]})
    assert r.status_code == 202
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    locs = [e["loc"] for e in body["results"][1]["errors"]]
    assert ["events", 1, "event_type"] in locs and ["events", 1, "event_id"] in locs

    # The rejected call_logged never reached identity.
    later = touchpoint(phone=phone)
    ingest.post("/v1/events", json=later)
    one_id = eventually(lambda: ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}).json().get("one_id"))
    eventually(lambda: ops.get(f"/v1/profiles/{one_id}").json().get("touchpoints") == 1)


def test_batch_limits_and_malformed_bodies(stack):
    ingest = stack.client("ingest")
    r = ingest.post("/v1/events", json={"events": [touchpoint()] * 1001})
    assert r.status_code == 413
    r = ingest.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = ingest.post("/v1/events", json={"events": "x"})
    assert r.status_code == 422 and "events" in r.text


def test_a_body_over_the_size_limit_is_refused_with_or_without_a_declared_length(stack):
    ingest = stack.client("ingest")
    big = b'{"events": [' + b" " * (6 * 1024 * 1024) + b"]}"  # over the 5 MiB default
    assert ingest.post("/v1/events", content=big, headers={"content-type": "application/json"}).status_code == 413

    def chunks():  # chunked transfer: no Content-Length to look at
        yield b'{"events": ['
        for _ in range(7 * 1024):
            yield b" " * 1024
        yield b"]}"

    r = ingest.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["detail"]
    assert ingest.get("/healthz").status_code == 200  # and it still answers


def test_a_key_over_its_ingest_limit_gets_429_with_retry_after(stack):
    """The e2e API allows 100 events/s with a burst of 600 per key (tests/e2e/conftest.py): refilling
    the 200 tokens the second request lacks takes two seconds, far more than the requests take."""
    ingest = stack.client("other_ingest")  # a key of its own: other tests keep their budget
    invalid = [{"event_type": "nope"}] * 400  # rejected after the limit: nothing reaches the broker
    assert ingest.post("/v1/events", json={"events": [{"event_type": "nope"}] * 601}).status_code == 413
    first = ingest.post("/v1/events", json={"events": invalid})
    assert first.status_code == 422  # within the limit: validated (and all rejected)
    second = ingest.post("/v1/events", json={"events": invalid})
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
    assert second.json()["detail"][0]["type"] == "rate_limited"


def test_keys_roles_and_tenants(stack):
    anonymous = httpx.Client(base_url=stack.api_url)
    assert anonymous.get("/v1/tasks").status_code == 401
    assert httpx.get(f"{stack.api_url}/v1/tasks", headers={"X-Api-Key": "wrong-key-123"}).status_code == 401
    assert stack.client("ingest").get("/v1/leads").status_code == 403
    assert stack.client("consultant").put("/v1/consultants/x", json={"name": "a", "store_id": "s"}).status_code == 403
    assert stack.client("ops").post("/v1/events", json=touchpoint()).status_code == 403

    # An event claiming another tenant is refused.
    r = stack.client("ingest").post("/v1/events", json=touchpoint(tenant=stack.other_tenant))
    assert r.status_code == 422 and r.json()["results"][0]["errors"][0]["type"] == "tenant_mismatch"

    # Another tenant sees nothing of ours, even knowing the identifiers and ids.
    ops, other = stack.client("ops"), stack.client("other_ops")
    phone = unique_phone()
    stack.client("ingest").post("/v1/events", json=touchpoint(phone=phone))
    one_id = eventually(lambda: ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}).json().get("one_id"))
    eventually(lambda: ops.get("/v1/tasks", params={"one_id": one_id}).json())
    assert other.get("/v1/identity/resolve", params={"type": "phone", "value": phone}).status_code == 404
    assert other.get(f"/v1/profiles/{one_id}").status_code == 404
    assert all(lead["one_id"] != one_id for lead in other.get("/v1/leads").json())
    assert other.get("/v1/tasks").json() == []
    assert other.get("/v1/ops/summary").json()["total"] == 0


def test_resolve_validates_and_normalises(stack):
    ops = stack.client("ops")
    r = ops.get("/v1/identity/resolve", params={"type": "phone", "value": "12"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "value"]
    assert ops.get("/v1/identity/resolve", params={"type": "fax", "value": "1"}).status_code == 422
    r = ops.get("/v1/identity/resolve", params={"type": "wechat_openid", "value": "o-secret-openid"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "namespace_required"
    assert "o-secret-openid" not in r.text  # the value is never echoed
    assert ops.get("/v1/identity/resolve", params={"type": "phone", "value": unique_phone()}).status_code == 404


def test_ops_summary_and_health(stack):
    summary = stack.client("ops").get("/v1/ops/summary").json()
    assert [s["stage"] for s in summary["funnel"]][:3] == ["anonymous", "follower", "contact"]
    assert summary["total"] == sum(s["count"] for s in summary["funnel"])
    assert httpx.get(f"{stack.api_url}/healthz").json() == {"status": "ok"}
    assert "leadflow_api_requests_total" in httpx.get(f"{stack.api_url}/metrics").text
    eventually(lambda: "leadflow_consumer_lag{" in httpx.get(f"{stack.api_url}/metrics").text)
    ready = httpx.get(f"{stack.api_url}/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "problems": []}
    for port in (16101, 16102, 16103, 16104, 16105):
        assert "leadflow_events_consumed_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        worker = eventually(lambda: (r := httpx.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200 and r.json())
        assert worker["status"] == "ready" and worker["problems"] == []
