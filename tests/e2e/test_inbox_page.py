"""The consultant's inbox page in headless Chromium (Debian's, driven by Playwright) against the running
stack: sign in with the consultant's key, the task list ordered by urgency with the SLA countdown, the
lead card (masked phone, an audited reveal, grade and the score's explanation, the timeline), accept,
and record an outcome with the next follow-up. Screenshots are kept in var/test/artifacts/."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect, sync_playwright

from leadflow.devstack import ROOT
from tests.e2e.conftest import KEYS
from tests.e2e.helpers import eventually, touchpoint, unique_phone

ARTIFACTS = ROOT / "var" / "test" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# As the machine's notes say: without the background-networking flags Chromium keeps dialling out.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_consultant_works_a_task_in_the_inbox(stack, browser):
    ops, ingest, admin = stack.client("ops"), stack.client("ingest"), stack.client("admin")
    store = f"store-{uuid.uuid4().hex[:6]}"
    ops.put("/v1/consultants/c-e2e-1", json={"name": "王芳", "store_id": store, "capacity": 1000, "active": True})
    phone = unique_phone()
    ingest.post("/v1/events", json=touchpoint(phone=phone, store_id=store, name="赵敏", car_model="modely",
                                              fill_seconds=40))
    # The same name on both: the task shows the lead's name when notify reads it, which may be after either.
    ingest.post("/v1/events", json=touchpoint("test_drive_booked", phone=phone, store_id=store, name="赵敏"))
    one_id = eventually(lambda: (r := ops.get("/v1/identity/resolve", params={"type": "phone", "value": phone}))
                        .status_code == 200 and r.json()["one_id"])
    task = eventually(lambda: [t for t in ops.get("/v1/tasks", params={"one_id": one_id}).json()
                               if t["consultant_id"] == "c-e2e-1"])[0]
    eventually(lambda: len(ops.get(f"/v1/scores/{one_id}").json().get("explanation", [])) >= 2)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")  # a phone
    page.goto(f"{stack.api_url}/inbox")
    expect(page.get_by_text("顾问登录")).to_be_visible()
    page.get_by_test_id("key").fill("wrong-key-000000")
    page.get_by_test_id("signin").click()
    expect(page.get_by_role("alert")).to_have_text("密钥无效或无权限")

    page.get_by_test_id("key").fill(KEYS["consultant"])
    page.get_by_test_id("signin").click()
    mine = page.get_by_test_id("task").filter(has_text="赵**")
    expect(mine).to_be_visible()
    expect(mine).to_contain_text("新线索")
    expect(mine.locator(".sla")).to_contain_text("剩余")
    assert "赵敏" not in page.content()  # names are masked on the list
    dues = [datetime.fromisoformat(d.get_attribute("data-due")) for d in page.locator("[data-testid=task] .sla").all()]
    assert dues == sorted(dues)  # the most urgent first
    page.screenshot(path=str(ARTIFACTS / "inbox-list.png"), full_page=True)

    mine.click()
    card = page.get_by_test_id("card")
    expect(card).to_be_visible()
    expect(page.get_by_test_id("explanation")).to_contain_text("留资")
    expect(page.get_by_test_id("explanation")).to_contain_text("试驾预约")
    expect(page.get_by_test_id("timeline")).to_contain_text("form_submitted")
    masked = page.get_by_test_id("phone").inner_text()
    assert "*" in masked and phone[-4:] in masked and phone not in page.content()
    page.get_by_test_id("reveal").click()
    expect(page.get_by_test_id("phone")).to_have_text(re.compile(re.escape(phone[-8:])))
    page.get_by_test_id("accept").click()
    expect(page.get_by_text("已接单")).to_be_visible()
    page.get_by_test_id("outcome").select_option("appointment_set")
    page.get_by_test_id("reason").fill("周六上午到店")
    follow = (datetime.now(UTC) + timedelta(days=2)).astimezone().replace(second=0, microsecond=0)
    page.get_by_test_id("next").fill(follow.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("result")).to_have_text("已提交：已约到店")
    page.screenshot(path=str(ARTIFACTS / "inbox-card.png"), full_page=True)

    stored = [t for t in ops.get("/v1/tasks", params={"one_id": one_id}).json() if t["task_id"] == task["task_id"]][0]
    assert stored["last_outcome"] == "appointment_set" and stored["accepted_at"] and stored["status"] == "open"
    assert datetime.fromisoformat(stored["next_follow_up_at"]) == follow
    audit = admin.get("/v1/audit/reveals").json()
    assert any(a["one_id"] == one_id and a["consultant_id"] == "c-e2e-1" for a in audit)

    page.get_by_role("button", name="English").click()
    expect(page.get_by_text("Record the outcome")).to_be_visible()
    page.close()
