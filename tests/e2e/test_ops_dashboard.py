"""The ops dashboard against the running stack: its data (`GET /v1/ops/dashboard`: stream health, funnel
with a store drill-down, sources and campaigns with spend, SLA and leaderboard, the tenant's latest dead
letters) and the page (`/ops`, Apache ECharts) in Debian's headless Chromium, screenshot kept in
var/test/artifacts/."""

from __future__ import annotations

import json
import uuid

from kafka import KafkaProducer
from playwright.sync_api import expect, sync_playwright

from schemas.topics import TOUCHPOINTS_RAW
from tests.e2e.conftest import KEYS
from tests.e2e.helpers import eventually, touchpoint, unique_phone
from tests.e2e.test_inbox_page import ARTIFACTS, CHROMIUM, FLAGS


def test_the_dashboard_shows_the_stream_and_the_business_of_the_callers_tenant_only(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    store = f"store-{uuid.uuid4().hex[:6]}"
    campaign = f"cmp-{uuid.uuid4().hex[:6]}"
    ops.put("/v1/consultants/c-dash-1", json={"name": "韩梅梅", "store_id": store, "capacity": 100, "active": True})
    assert ingest.post("/v1/events", json=touchpoint(phone=unique_phone(), store_id=f"{store}-b")).status_code == 202
    for _ in range(3):
        event = touchpoint(phone=unique_phone(), store_id=store, fill_seconds=40)
        event["source"]["campaign_id"] = campaign
        assert ingest.post("/v1/events", json=event).status_code == 202
    producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    bad = json.dumps(touchpoint(tenant=stack.tenant) | {"event_type": "telepathy"}).encode()
    producer.send(TOUCHPOINTS_RAW.qualified(stack.topic_prefix), bad).get(timeout=30)
    producer.close()

    def ready():
        d = ops.get("/v1/ops/dashboard", params={"store": store}).json()
        lead = next(f for f in d["funnel"] if f["stage"] == "lead")
        return (lead["reached"] == 3 and d["stream"]["topics"] and d["latency"]["n"] > 0
                and d["dead_letters"]["latest"] and any(c["campaign"] == campaign for c in d["campaigns"]) and d)

    board = eventually(ready, timeout_s=60)
    assert [f["stage"] for f in board["funnel"]][:4] == ["anonymous", "follower", "contact", "lead"]
    assert next(c for c in board["conversions"] if c["to_stage"] == "opportunity")["rate"] == 0.0
    assert 0 <= board["latency"]["p50_s"] <= board["latency"]["p90_s"] <= board["latency"]["p99_s"]
    assert "c-dash-1" in {p["consultant_id"] for p in board["leaderboard"]}
    mine = next(c for c in board["campaigns"] if c["campaign"] == campaign)
    assert (mine["valid"], mine["spend"], mine["cost_per_valid"]) == (3, None, None)
    assert {g["group"] for g in board["stream"]["groups"]} >= {"leadflow-identity", "leadflow-notify"}
    assert "validation_error" in {d["reason"] for d in board["dead_letters"]["latest"]}
    everyone = ops.get("/v1/ops/dashboard").json()
    assert next(f for f in everyone["funnel"] if f["stage"] == "lead")["reached"] > 3  # the store narrowed it
    # Another tenant sees its own business: none of this tenant's campaigns or dead letters.
    other = stack.client("other_ops").get("/v1/ops/dashboard").json()
    assert campaign not in {c["campaign"] for c in other["campaigns"]} and not other["dead_letters"]["latest"]
    assert stack.client("consultant").get("/v1/ops/dashboard").status_code == 403
    assert set(board["stage_age_days"]) >= {"lead"} and board["stage_age_days"]["lead"] < 1


def test_the_funnel_drills_down_by_region(stack):
    ops, ingest = stack.client("ops"), stack.client("ingest")
    before = ops.get("/v1/ops/dashboard", params={"region": "华东"}).json()
    east = lambda d: next(f for f in d["funnel"] if f["stage"] == "lead")["reached"]  # noqa: E731
    for store in ("store-east-1", "store-east-2"):
        assert ingest.post("/v1/events", json=touchpoint(phone=unique_phone(), store_id=store)).status_code == 202
    after = eventually(lambda: (d := ops.get("/v1/ops/dashboard", params={"region": "华东"}).json())
                       and east(d) == east(before) + 2 and d)
    assert after["filters"]["region"] == "华东"
    nowhere = ops.get("/v1/ops/dashboard", params={"region": "火星"}).json()
    assert east(nowhere) == 0


def test_the_dashboard_page_draws_its_charts(stack):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1200}, locale="zh-CN")
            page.goto(f"{stack.api_url}/ops")
            page.get_by_test_id("key").fill(KEYS["consultant"])
            page.get_by_test_id("signin").click()
            expect(page.get_by_role("alert")).to_have_text("密钥无效或无运营权限")
            page.get_by_test_id("key").fill(KEYS["ops"])
            page.get_by_test_id("signin").click()
            expect(page.get_by_test_id("board")).to_be_visible()
            expect(page.get_by_test_id("updated")).to_contain_text("更新于")
            for chart in ("c-throughput", "c-lag", "c-latency", "c-funnel", "c-sources", "c-campaigns"):
                expect(page.locator(f"#{chart} canvas")).to_have_count(1)  # ECharts drew it
            expect(page.get_by_test_id("leaderboard").locator("tr").first).to_be_visible()
            page.wait_for_timeout(800)  # the charts' entry animation
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "ops-dashboard.png"), full_page=True)
            page.get_by_role("button", name="English").click()
            expect(page.get_by_text("Lead funnel")).to_be_visible()
        finally:
            browser.close()
