"""The leads service against the real store and broker: windowed velocity counters, the dormancy
timer, consultants' outcomes, assignments and collisions, referral credits, source quality with its
alerts, and dead-lettering of records it cannot read."""

from __future__ import annotations

import pytest

import asyncio
from types import SimpleNamespace

from datetime import UTC, datetime, timedelta

import faust

from leadflow.runtime.leases import PersonGuard, PersonLeases
from leadflow.runtime.worker import Channels
from schemas.dead_letters import DeadLetterHeaders
from schemas.identity import LinkedIdentifier, TouchpointIdentified
from schemas.leads import CollisionResolution, LeadUpdated, Route, SourceAlerted, Stage, Verdict
from schemas.scores import Grade
from schemas.tasks import Outcome, TaskCreated, TaskOutcomeRecorded
from schemas.topics import LEADS_ALERTS, LEADS_CHANGES, TASKS_OUTCOMES, dead_letter_topic
from schemas.touchpoints import TouchpointReceived
from tests.integration.store_kit import by_id_only, watched
from tests.integration.kafka_kit import process_through_policy, read_all
from services.leads.adapters.sources import SourceStats
from services.leads.bootstrap import make_service
from services.leads.domain.policy import CollisionPolicy, LeadPolicy, LeadPolicyBook
from services.leads.domain.source_quality import AlertPolicy
from services.leads.entrypoints import agents

T0 = datetime(2025, 9, 1, 8, tzinfo=UTC)  # far enough back for the timer tests to look months ahead
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"


def form(event_id: str, one_id: str, *, minute: float = 0, phone: int | None = 1, device: str | None = None,
         ip: str | None = None, channel: str = "web", campaign: str | None = None, store: str = "s1",
         event_type: str = "form_submitted", user_agent: str | None = UA, tenant: str = "t1",
         **attributes) -> TouchpointIdentified:
    at = T0 + timedelta(minutes=minute)
    raw = [{"type": "device_id", "value": device or "dev-x"}]
    linked = []
    if phone is not None:
        raw.append({"type": "phone", "value": f"139****{phone:04d}"})
        linked.append(LinkedIdentifier(type="phone", link_id=f"ph-{phone}", masked=f"139****{phone:04d}", facts=["mobile"]))
    if device is not None:
        linked.append(LinkedIdentifier(type="device_id", link_id=f"dv-{device}", masked="de****"))
    tp = TouchpointReceived.model_validate({
        "event_id": event_id, "event_type": event_type, "occurred_at": at.isoformat(), "tenant_id": tenant,
        "source": {"system": "it", "channel": channel, "campaign_id": campaign, "store_id": store,
                   "user_agent": user_agent, "ip": ip},
        "identifiers": raw,
        "attributes": {"fill_seconds": 25, **attributes} if event_type == "form_submitted" else attributes,
    })
    return TouchpointIdentified(tenant_id=tenant, event_id=event_id, one_id=one_id, touchpoint=tp, identifiers=linked,
                                identified_at=at + timedelta(seconds=1))


def outcome(n: int, one_id: str, kind: Outcome, *, minute: float = 90, reason: str | None = None) -> TaskOutcomeRecorded:
    return TaskOutcomeRecorded(outcome_id=f"o{n}", task_id="task-1", tenant_id="t1", one_id=one_id, consultant_id="c1",
                               outcome=kind, reason=reason, recorded_at=T0 + timedelta(minutes=minute))


def task(one_id: str, *, consultant: str = "c1", store: str = "s1") -> TaskCreated:
    at = T0 + timedelta(minutes=30)
    return TaskCreated(task_id=f"task-{one_id}-{consultant}", tenant_id="t1", one_id=one_id, consultant_id=consultant,
                       store_id=store, grade=Grade.A, score=80.0, reason="new_valid_lead", trigger_event_id="x",
                       due_at=at + timedelta(hours=2), created_at=at)


async def service(db, policy: LeadPolicy | None = None):
    leads = make_service(db, policies=LeadPolicyBook(policy or LeadPolicy()), secret=b"it-secret")
    await leads.ensure_indexes()
    return leads


def changes(handled) -> list[LeadUpdated]:
    return [o.value for o in handled.outgoing if isinstance(o.value, LeadUpdated)]


# ---- windows ---------------------------------------------------------------------------------------


async def test_one_device_brushing_forms_is_junk_beyond_the_window_threshold(db):
    leads = await service(db)
    limit = LeadPolicy().quality.max_forms_per_device
    verdicts = []
    for n in range(limit + 2):  # a different person (fresh phone) each time, one device, a minute apart
        out = changes(await leads.on_identified(form(f"b{n}", f"p{n}", minute=n, phone=100 + n, device="brush")))
        verdicts.append(out[0].lead.verdict)
    assert verdicts == [Verdict.VALID] * limit + [Verdict.JUNK] * 2
    assert "device_velocity" in (await leads.get("t1", f"p{limit}")).reasons
    # A replay gets the verdict of its first attempt, not a recount.
    again = changes(await leads.on_identified(form("b0", "p0", minute=0, phone=100, device="brush")))
    assert again[0].lead.verdict is Verdict.VALID
    # Outside the window the device is clean again.
    later = changes(await leads.on_identified(form("late", "q", minute=60 * 3, phone=200, device="brush")))
    assert later[0].lead.verdict is Verdict.VALID


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "one of several workers"])
async def test_one_ip_counts_across_devices_and_the_ip_is_never_stored(db, shared):
    leads = await service(db)
    leads.guard.sole = lambda: not shared
    limit = LeadPolicy().quality.max_forms_per_ip
    for n in range(limit + 1):
        out = changes(await leads.on_identified(form(f"i{n}", f"p{n}", minute=n, phone=300 + n, device=f"d{n}",
                                                     ip="203.0.113.9")))
    assert out[0].lead.verdict is Verdict.JUNK and "ip_velocity" in out[0].lead.reasons
    stored = [doc async for doc in db["lead_velocity"].find({})] + [doc async for doc in db["lead_touchpoints"].find({})]
    assert stored and all("203.0.113.9" not in str(doc) for doc in stored)


# ---- the timer -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "one of several workers"])
async def test_the_timer_sends_a_quiet_lead_dormant_without_waiting_for_an_event(db, shared):
    leads = await service(db)
    leads.guard.sole = lambda: not shared
    await leads.on_identified(form("e1", "p1"))
    after = LeadPolicy().lifecycle.dormant_after[Stage.LEAD]
    assert not (await leads.on_timer(T0 + after - timedelta(minutes=1))).outgoing
    out = changes(await leads.on_timer(T0 + after + timedelta(hours=1)))
    assert [(c.one_id, c.lead.stage, c.cause, c.previous_stage) for c in out] == [
        ("p1", Stage.DORMANT, "timer", Stage.LEAD)]
    assert not (await leads.on_timer(T0 + after + timedelta(days=2))).outgoing  # nothing left due
    history = await leads.history("t1", "p1")
    assert [(h["from"], h["to"], h["cause_type"]) for h in history] == [
        (None, "lead", "touchpoint"), ("lead", "dormant", "timer")]
    back = changes(await leads.on_identified(form("e2", "p1", minute=60 * 24 * 40)))
    assert back[0].lead.stage is Stage.REACTIVATED and back[0].lead.stage_before is Stage.LEAD


async def test_the_timer_finds_due_persons_in_its_agenda_and_reads_the_leads_only_by_id(infra, db):
    async with watched(infra, db) as (watched_db, commands):
        leads = await service(watched_db)
        agenda = leads.repo.agenda
        agenda.clock = lambda: T0  # the wall clock the horizon is kept by
        after = LeadPolicy().lifecycle.dormant_after[Stage.LEAD]
        await leads.on_identified(form("e1", "p1"))
        await leads.on_identified(form("e2", "p2", phone=2))
        assert await agenda.due(T0 + after * 3, 10) == []  # due in a month: not entered when saved
        # The first run sweeps the leads (the agenda was never swept): both are due within a day of it.
        assert not (await leads.on_timer(T0 + after - timedelta(hours=2))).outgoing
        assert sorted(e.key for e in await agenda.due(T0 + after * 3, 10)) == ["p1", "p2"]
        # p2 comes back, so its dormancy moves a month on; its entry is stale now.
        await leads.on_identified(form("e3", "p2", phone=2, minute=after.total_seconds() / 60 - 60))
        commands.clear()
        out = changes(await leads.on_timer(T0 + after + timedelta(hours=1)))
        assert [(c.one_id, c.lead.stage) for c in out] == [("p1", Stage.DORMANT)]
        assert by_id_only(commands.reads_of("leads")), commands.reads_of("leads")  # no scan
        assert await agenda.due(T0 + after * 3, 10) == []  # p1 is dormant, p2's entry was dropped as stale
        # The sweep half a day later finds p2 again once its new time is within a day.
        out = changes(await leads.on_timer(T0 + after * 2))
        assert [(c.one_id, c.lead.stage) for c in out] == [("p2", Stage.DORMANT)]


# ---- outcomes, assignments, collisions, referrals ----------------------------------------------------


async def test_outcomes_move_the_lifecycle_and_an_invalid_number_is_bad_tenant_wide(db):
    leads = await service(db)
    await leads.on_identified(form("e1", "p1"))
    out = changes(await leads.on_outcome(outcome(1, "p1", Outcome.APPOINTMENT_SET)))
    assert out[0].lead.stage is Stage.OPPORTUNITY and out[0].cause == "outcome" and out[0].cause_id == "o1"
    assert out[0].trigger.event_id == "e1"  # the newest touchpoint
    assert changes(await leads.on_outcome(outcome(1, "p1", Outcome.APPOINTMENT_SET)))[0].change_id == out[0].change_id

    bad = changes(await leads.on_outcome(outcome(2, "p1", Outcome.INVALID_NUMBER, minute=100)))
    assert bad[0].lead.reachable is False
    assert await db["lead_bad_phones"].count_documents({}) == 1
    # The same phone on another person's form (before identity merged them) is junk for the whole tenant.
    other = changes(await leads.on_identified(form("e2", "p2", minute=120, phone=1)))
    assert other[0].lead.verdict is Verdict.JUNK and "phone_marked_invalid" in other[0].lead.reasons

    lost = changes(await leads.on_outcome(outcome(3, "p1", Outcome.LOST, minute=130, reason="已购别家")))
    assert lost[0].lead.stage is Stage.LOST and lost[0].lead.lost_reason == "bought_elsewhere"


async def test_an_assignment_makes_an_owner_and_another_store_collides_per_policy(db):
    leads = await service(db, LeadPolicy(collision=CollisionPolicy.ASK_OPS))
    await leads.on_identified(form("e1", "p1", store="s1"))
    owned = changes(await leads.on_task(task("p1", store="s1")))
    assert owned[0].cause == "assignment" and owned[0].lead.owner.consultant_id == "c1"
    replayed = changes(await leads.on_task(task("p1", store="s1")))  # re-sent: its send may have been lost
    assert [c.change_id for c in replayed] == [owned[0].change_id]
    assert not (await leads.on_task(task("p1", consultant="c2", store="s2"))).outgoing  # the owner stays
    out = changes(await leads.on_identified(form("e2", "p1", minute=60, store="s2", event_type="price_inquired")))
    collision = out[0].lead.collision
    assert (collision.owner_store_id, collision.store_id, collision.resolution) == ("s1", "s2", CollisionResolution.ASK_OPS)
    assert out[0].repeat_inquiry and out[0].lead.repeat_inquiries == 1


async def test_a_referral_credits_the_referrer(db):
    leads = await service(db)
    await leads.on_identified(form("buy", "old", event_type="purchase_completed", phone=7))
    out = changes(await leads.on_identified(form("ref", "new", minute=60, phone=8, event_type="referral_made",
                                                 referrer_one_id="old")))
    by_person = {c.one_id: c for c in out}
    assert by_person["new"].lead.referrer_one_id == "old"
    assert by_person["old"].lead.referrals == 1 and by_person["old"].lead.stage is Stage.LOYAL
    assert by_person["old"].cause == "referral"
    replay = changes(await leads.on_identified(form("ref", "new", minute=60, phone=8, event_type="referral_made",
                                                    referrer_one_id="old")))
    assert [c.one_id for c in replay] == ["new"] and (await leads.get("t1", "old")).life.referrals == 1


async def test_suspect_leads_are_routed_to_verification(db):
    leads = await service(db)
    out = changes(await leads.on_identified(form("e1", "p1", user_agent="python-requests/2.31")))
    assert (out[0].lead.verdict, out[0].lead.route) == (Verdict.SUSPECT, Route.VERIFICATION)
    found = await leads.list("t1", reason="bot_user_agent")
    assert [lead.one_id for lead in found] == ["p1"]


# ---- source quality --------------------------------------------------------------------------------


async def test_source_quality_counts_each_touchpoint_once_and_alerts_on_a_jump(db):
    policy = LeadPolicy(alerts=AlertPolicy(min_volume=5, min_baseline_volume=10, default_baseline=0.1))
    leads = await service(db, policy)
    # Hour 0: a clean campaign.
    for n in range(12):
        await leads.on_identified(form(f"c{n}", f"p{n}", minute=n * 4, phone=400 + n, campaign="cmp-1"))
    await leads.on_identified(form("c0", "p0", minute=0, phone=400, campaign="cmp-1"))  # a replay
    # Hour 1: the same campaign turns to bots.
    alerts: list[SourceAlerted] = []
    for n in range(8):
        handled = await leads.on_identified(form(f"x{n}", f"q{n}", minute=60 + n, phone=500 + n, campaign="cmp-1",
                                                 user_agent=None))
        alerts += [o.value for o in handled.outgoing if o.topic is LEADS_ALERTS]
        if handled.after_emit:
            await handled.after_emit()
    assert {(a.dimension, a.value) for a in alerts} >= {("campaign", "cmp-1")}
    assert len([a for a in alerts if a.dimension == "campaign"]) == 1  # once per source and hour
    report = {(r.dimension, r.value): r for r in await leads.source_quality("t1", hours=24, now=T0 + timedelta(hours=2))}
    campaign = report[("campaign", "cmp-1")]
    assert (campaign.counts.valid, campaign.counts.suspect, campaign.counts.junk) == (12, 8, 0)
    assert [a["dimension"] for a in await leads.alerts("t1", hours=24, now=T0 + timedelta(hours=2))].count("campaign") == 1


async def test_two_workers_counting_the_same_sources_at_once_lose_no_count(db):
    """Sources are shared by every leads worker, and FerretDB v1 applies `$inc` as a read and a write: two
    workers counting one source at once hold its lease (the handler does), or counts are lost."""
    workers = [(SourceStats(db), PersonGuard(PersonLeases(db, collection="lead_leases"), _never_merged))
               for _ in range(2)]
    policy = AlertPolicy()

    async def count(stats: SourceStats, guard: PersonGuard, hour: int) -> None:
        guard.sole = lambda: False  # one of two workers
        async with guard.exclusive("t1", f"source\x1fcampaign\x1fcmp-{hour % 3}"):
            await stats.count("t1", "campaign", f"cmp-{hour % 3}", T0 + timedelta(hours=hour), Verdict.VALID, policy)

    await asyncio.gather(*(count(stats, guard, hour) for hour in range(12) for stats, guard in workers for _ in range(2)))
    rows = await workers[0][0].rows("t1", since=T0)
    assert sum(counts.valid for *_, counts in rows) == 48 and len(rows) == 12
    assert await db["lead_leases"].count_documents({}) == 0


async def _never_merged(tenant: str, one_id: str):
    return one_id, None


# ---- the agents on the real broker -----------------------------------------------------------------


def test_leads_consumes_outcomes_and_assignments_and_runs_a_timer():
    app = faust.App("it-leads-agents", broker="kafka://127.0.0.1:1")
    agents.register(Channels(app, "leads", "p."), _Stub())
    topics = {name: [t for t in agent.channel.topics] for name, agent in app.agents.items()}
    assert topics["leads.outcomes"] == ["p.tasks.outcomes"] and topics["leads.assignments"] == ["p.tasks.events"]
    assert len(app._app_tasks) == 1  # the timer (Faust keeps timers as app tasks)


class _Stub:
    timer_interval_s = 60.0
    guard = SimpleNamespace()  # register tells it whether this worker is alone

    async def _never(self, *_):
        raise AssertionError("not called")

    on_identified = on_identity_changed = on_outcome = on_task = on_timer = _never


async def test_outcomes_flow_through_the_consumer_policy_and_bad_records_are_dead_lettered(infra, db, unique):
    leads = await service(db)
    await leads.on_identified(form("e1", "p1"))
    prefix = f"it{unique}."
    dlq = dead_letter_topic(TASKS_OUTCOMES, "leads")
    records = [outcome(1, "p1", Outcome.VISITED).to_bytes(), b"not json", b'{"outcome_id": "o9"}']
    await process_through_policy(infra, service="leads", source=TASKS_OUTCOMES, prefix=prefix, outputs=(LEADS_CHANGES,),
                                 key=b"p1", records=records, decode=TaskOutcomeRecorded.from_bytes, handle=leads.on_outcome)
    out = [LeadUpdated.model_validate_json(r.value) for r in read_all(infra, LEADS_CHANGES.qualified(prefix))]
    assert [(c.one_id, c.lead.stage, c.cause) for c in out] == [("p1", Stage.OPPORTUNITY, "outcome")]
    letters = [DeadLetterHeaders.from_headers(r.headers) for r in read_all(infra, dlq.qualified(prefix))]
    assert [(h.source_offset, h.reason, h.consumer) for h in letters] == [
        (1, "invalid_json", "leads"), (2, "validation_error", "leads")]
