"""leads, scoring and notify handlers against the real store: replays are no-ops, races are caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.identity import LinkedIdentifier, TouchpointIdentified
from schemas.leads import LeadUpdated
from schemas.scores import ScoreChanged
from schemas.touchpoints import TouchpointReceived
from services.leads.bootstrap import make_service
from services.notify.adapters.repository import NotifyRepository
from services.notify.handlers import NotifyService
from services.scoring.bootstrap import make_service as make_scoring
from tests.unit.leads_kit import step

NOW = datetime(2026, 11, 22, 10, tzinfo=UTC)


def identified(event_id: str, event_type: str = "form_submitted", one_id: str = "p1") -> TouchpointIdentified:
    tp = TouchpointReceived.model_validate({
        "event_id": event_id, "event_type": event_type, "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
        "tenant_id": "t1", "source": {"system": "it", "channel": "web", "store_id": "s1", "user_agent": "Mozilla/5.0"},
        "identifiers": [{"type": "phone", "value": "+8613800001111"}], "attributes": {"name": "李娜"},
    })
    phone = LinkedIdentifier(type="phone", link_id="ph-1111", masked="138****1111", facts=["mobile"])
    return TouchpointIdentified(tenant_id="t1", event_id=event_id, one_id=one_id, touchpoint=tp, identifiers=[phone],
                                identified_at=NOW)


async def test_overlapping_writers_after_a_rebalance_converge(db):
    """The old owner of a partition wrote e1..e3; the new owner's stale write (state after e1) lands
    last. The new owner then replays from its committed offset and the state ends complete."""
    old = make_service(db)
    await old.ensure_indexes()
    repo = old.repo
    for event_id in ("e1", "e2", "e3"):
        await old.on_identified(identified(event_id))
    stale = step(None, identified("e1")).lead
    await repo.save(stale)  # the late write of the new owner
    new = make_service(db)
    for event_id in ("e2", "e3"):  # the new owner's replay
        await new.on_identified(identified(event_id))
    lead = await repo.get("t1", "p1")
    assert lead.touchpoints == 3 and lead.recent_event_ids == ("e1", "e2", "e3")
    await new.on_identified(identified("e3"))  # and a further replay changes nothing
    assert (await repo.get("t1", "p1")).version == 3


async def test_the_chain_is_idempotent_under_replay(db):
    leads = make_service(db)
    scoring = make_scoring(db, clock=lambda: NOW)
    notify = NotifyService(NotifyRepository(db), clock=lambda: NOW)
    for repo in (leads, scoring, notify.repo):
        await repo.ensure_indexes()
    await notify.upsert_consultant(tenant_id="t1", consultant_id="c1",
                                   fields={"name": "王芳", "store_id": "s1", "capacity": 5, "active": True})

    async def run(event: TouchpointIdentified):
        change: LeadUpdated = (await leads.on_identified(event)).outgoing[0].value
        scored = (await scoring.on_lead_updated(change)).outgoing
        tasks = (await notify.on_score_changed(scored[0].value)).outgoing if scored else []
        return change, scored, tasks

    change, scored, tasks = await run(identified("e1"))
    assert change.version == 1 and change.lead.stage == "lead"
    assert isinstance(scored[0].value, ScoreChanged) and scored[0].value.grade == "B"
    assert tasks[0].value.consultant_id == "c1"

    again = await run(identified("e1"))  # a replay after a crash re-emits the same ids
    assert again[0].change_id == change.change_id and again[0].version == 1
    assert again[1][0].value.change_id == scored[0].value.change_id
    assert again[2][0].value.task_id == tasks[0].value.task_id
    assert await db["tasks"].count_documents({}) == 1
    assert (await leads.get("t1", "p1")).touchpoints == 1

    _, scored2, tasks2 = await run(identified("e2", "test_drive_booked"))
    assert scored2[0].value.grade == "A" and not tasks2  # one open task per person
    assert await db["tasks"].count_documents({}) == 1
    assert [t["to"] for t in await leads.history("t1", "p1")] == ["lead", "opportunity"]
