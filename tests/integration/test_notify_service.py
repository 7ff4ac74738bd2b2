"""Notify against the real store (and the real broker for outcomes): later signals refresh the open task
instead of doubling it; the timer escalates a missed deadline, reassigns once and then leaves it with
the manager told; unanswered tasks return to the shared pool and are claimed under the tenant's rules;
consultants' performance from stored tasks and outcomes."""

from __future__ import annotations

import asyncio

import pytest

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import socket

import httpx
from aiohttp import web
from aiosmtpd.controller import Controller

from leadflow.runtime.admin import ensure_topics
from leadflow.sdk import EventProducer
from schemas.identity import PersonErased, PersonsMerged
from schemas.leads import LeadSnapshot, Owner, Stage, Trigger, Verdict
from schemas.scores import Grade, ScoreChanged
from schemas.tasks import Outcome, TaskCreated
from schemas.topics import TASKS_OUTCOMES
from schemas.touchpoints import EventType
from services.notify.adapters.channels import EmailChannel, WebhookChannel
from services.notify.adapters.pushes import QUEUEING, PushOutbox
from services.notify.bootstrap import make_service
from services.notify.domain.delivery import Push, verify_signature
from services.notify.domain.policy import parse_policies
from services.notify.handlers import ClaimRefused
from tests.integration.store_kit import WRITES, by_id_only, watched

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
TENANT = "t1"
ALWAYS_OPEN = {"days": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def scored(one_id: str, n: int, grade: Grade, previous: Grade | None, kind: EventType = EventType.FORM_SUBMITTED, *,
           store: str = "s1") -> ScoreChanged:
    at = T0 + timedelta(minutes=n)
    return ScoreChanged(
        change_id=f"g-{one_id}-{n}", tenant_id=TENANT, one_id=one_id, score=30.0 + 10 * n, grade=grade,
        previous_grade=previous,
        trigger=Trigger(event_id=f"e-{one_id}-{n}", event_type=kind, occurred_at=at, channel="web", store_id=store),
        lead=LeadSnapshot(verdict=Verdict.VALID, stage=Stage.LEAD, reachable=True, store_id=store, touchpoints=n,
                          first_seen_at=T0, last_seen_at=at, name="李娜", product="Model Y"),
        scored_at=at,
    )


async def notify_service(db, clock: Clock, **policy):
    policies = parse_policies({"default": {"hours": ALWAYS_OPEN, **policy}})
    service = make_service(db, policies=policies, clock=clock)
    await service.repo.ensure_indexes()
    for cid, manager in (("c1", False), ("c2", False), ("m1", True)):
        await service.upsert_consultant(tenant_id=TENANT, consultant_id=cid,
                                        fields={"name": cid, "store_id": "s1", "capacity": 50, "active": True,
                                                "manager": manager, "on_duty": not manager})
    return service


@asynccontextmanager
async def serving(path: str, handler):
    """A local HTTP receiver for pushes (aiohttp on a free port): yields its URL for `path`."""
    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    finally:
        await runner.cleanup()


def created(handled) -> list[TaskCreated]:
    return [o.value for o in handled.outgoing]


async def load(service, consultant: str) -> int:
    doc = await service.repo.consultants.find_one({"_id": f"{TENANT}\x1f{consultant}"})
    return doc.get("open_tasks", 0)


async def test_later_signals_refresh_the_open_task_and_a_replay_changes_nothing(db):
    clock = Clock(T0)
    service = await notify_service(db, clock)
    [task] = created(await service.on_score_changed(scored("p1", 1, Grade.B, None)))
    assert (task.reason, task.due_at) == ("new_valid_lead", T0 + timedelta(hours=24))
    clock.at = T0 + timedelta(hours=1)
    rose = scored("p1", 2, Grade.H, Grade.B, EventType.PAGE_VIEWED)
    assert created(await service.on_score_changed(rose)) == []  # no second task
    assert created(await service.on_score_changed(rose)) == []
    doc = await service.repo.task(TENANT, task.task_id)
    assert (doc["version"], doc["grade"], doc["due_at"]) == (2, "H", clock.at + timedelta(minutes=15))
    assert [(u["reason"], u["detail"]) for u in doc["updates"]] == [("grade_rose", "B->H")]
    assert len(await service.tasks(tenant_id=TENANT, consultant_id=None, status=None, one_id="p1")) == 1
    # A page view that fires nothing leaves the task alone.
    await service.on_score_changed(scored("p1", 3, Grade.H, Grade.H, EventType.PAGE_VIEWED))
    assert (await service.repo.task(TENANT, task.task_id))["version"] == 2


async def test_a_change_that_asks_nothing_takes_no_lease_and_one_that_asks_something_is_decided_under_it(infra, db):
    async with watched(infra, db) as (watched_db, commands):
        clock = Clock(T0)
        service = await notify_service(watched_db, clock)
        assert not service.guard.sole()  # on FerretDB the API writes tasks too: every write takes the lease
        [task] = created(await service.on_score_changed(scored("p1", 1, Grade.B, None)))
        commands.clear()
        await service.on_score_changed(scored("p1", 2, Grade.B, Grade.B, EventType.PAGE_VIEWED))  # fires nothing
        junk = scored("p2", 1, Grade.C, None)
        await service.on_score_changed(junk.model_copy(update={"lead": junk.lead.model_copy(update={"verdict": Verdict.JUNK})}))
        assert [(name, coll) for name, coll, _ in commands.seen if name in WRITES] == []  # not even a lease
        assert by_id_only(commands.reads_of("task_slots"))
        await service.on_score_changed(scored("p1", 3, Grade.H, Grade.B, EventType.PAGE_VIEWED))  # refreshes
        assert commands.writes_to("task_leases") == 2  # taken and given back
        assert (await service.repo.task(TENANT, task.task_id))["grade"] == "H"


# One of several workers, the timer takes each task's person's lease and re-reads the task under it.
@pytest.mark.parametrize("shared", [False, True], ids=["alone", "one of several workers"])
async def test_a_missed_deadline_escalates_reassigns_once_then_stays_with_the_manager_told(db, shared):
    clock = Clock(T0)
    service = await notify_service(db, clock)
    service.guard.sole = lambda: not shared
    [task] = created(await service.on_score_changed(scored("p1", 1, Grade.H, None)))
    first = task.consultant_id
    assert first in ("c1", "c2")  # the manager is off duty for leads: they get escalations
    await service.on_timer(T0 + timedelta(minutes=14))
    assert (await service.repo.task(TENANT, task.task_id))["consultant_id"] == first

    clock.at = T0 + timedelta(minutes=20)
    await service.on_timer(clock.at)
    doc = await service.repo.task(TENANT, task.task_id)
    second = doc["consultant_id"]
    assert second in ("c1", "c2") and second != first and doc["previous_consultant_id"] == first
    assert doc["due_at"] == clock.at + timedelta(minutes=15) and "breached_at" not in doc
    assert [e["managers"] for e in doc["escalations"]] == [["m1"]]
    assert (await load(service, first), await load(service, second)) == (0, 1)

    clock.at = T0 + timedelta(minutes=40)
    await service.on_timer(clock.at)
    doc = await service.repo.task(TENANT, task.task_id)
    assert doc["consultant_id"] == second and doc["breached_at"] == clock.at and doc["escalated_to"] == ["m1"]
    await service.on_timer(clock.at + timedelta(minutes=5))  # marked: not escalated again
    assert len((await service.repo.task(TENANT, task.task_id))["escalations"]) == 2


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "one of several workers"])
async def test_unanswered_tasks_return_to_the_pool_and_are_claimed_under_the_rules(db, shared):
    clock = Clock(T0)
    service = await notify_service(db, clock, pool={"return_after_days": 3, "daily_claim_limit": 1, "cooldown_days": 7},
                                   escalation={"reassign": False})
    service.guard.sole = lambda: not shared
    tasks = [created(await service.on_score_changed(scored(f"p{n}", 1, Grade.B, None)))[0] for n in range(2)]
    await service.on_timer(T0 + timedelta(days=2))
    assert [(await service.repo.task(TENANT, t.task_id))["queue"] for t in tasks] == ["sales", "sales"]
    await service.on_timer(T0 + timedelta(days=3, minutes=1))
    pooled = [await service.repo.task(TENANT, t.task_id) for t in tasks]
    assert [(d["queue"], d["consultant_id"]) for d in pooled] == [("pool", None), ("pool", None)]
    assert await load(service, "c1") == await load(service, "c2") == 0
    listed = await service.tasks(tenant_id=TENANT, consultant_id=None, status=None, queue="pool")
    assert {d["_id"] for d in listed} == {t.task_id for t in tasks}

    clock.at = T0 + timedelta(days=4)
    previous = pooled[0]["previous_consultant_id"]
    other = "c2" if previous == "c1" else "c1"
    try:
        await service.claim(tenant_id=TENANT, task_id=tasks[0].task_id, consultant_id=previous)
        raise AssertionError("the previous owner claimed it back within the cool-down")
    except ClaimRefused as refused:
        assert refused.decision.reason == "cooldown"
    claimed = await service.claim(tenant_id=TENANT, task_id=tasks[0].task_id, consultant_id=other)
    assert claimed["consultant_id"] == other and claimed["protected_until"] == clock.at + timedelta(days=7)
    assert await load(service, other) == 1
    for task_id, reason in ((tasks[0].task_id, "not_in_pool"), (tasks[1].task_id, "daily_limit")):
        try:
            await service.claim(tenant_id=TENANT, task_id=task_id, consultant_id=other)
            raise AssertionError(f"claimed despite {reason}")
        except ClaimRefused as refused:
            assert refused.decision.reason == reason
    # Protected: the claimer keeps it past the pool period while the protection lasts.
    await service.on_timer(clock.at + timedelta(days=3, minutes=1))
    assert (await service.repo.task(TENANT, tasks[0].task_id))["consultant_id"] == other


async def test_the_timers_find_tasks_reminders_and_pushes_in_their_agendas_and_read_them_only_by_id(infra, db):
    async with watched(infra, db) as (watched_db, commands):
        clock = Clock(T0)
        service = await notify_service(watched_db, clock, repurchase={"cycles": {"益生菌": 30}, "remind_days_before": 5})
        await service.outbox.ensure_indexes()
        for agenda in (service.repo.task_agenda, service.repo.reminder_agenda, service.outbox.agenda):
            agenda.clock = clock  # the wall clock the horizon is kept by
        await service.on_timer(T0)  # the first runs sweep: nothing yet
        await service.deliver(T0)
        bought = scored("p9", 1, Grade.O, Grade.A, EventType.PURCHASE_COMPLETED)
        await service.on_score_changed(bought.model_copy(update={"lead": bought.lead.model_copy(update={
            "stage": Stage.CUSTOMER, "product": "益生菌", "owner": Owner(consultant_id="c2", store_id="s1", since=T0)})}))
        assert await service.repo.reminder_agenda.due(T0 + timedelta(days=90), 10) == []  # due in 25 days
        [task] = created(await service.on_score_changed(scored("p1", 1, Grade.H, None)))
        [entry] = await service.repo.task_agenda.due(task.due_at, 10)
        assert (entry.key, entry.owner, entry.due_at) == (task.task_id, "p1", task.due_at)
        assert [e.key for e in await service.outbox.agenda.due(T0, 10)] != []  # the inbox push, waiting

        commands.clear()
        await service.deliver(T0)
        assert await service.outbox.agenda.due(T0 + timedelta(days=1), 10) == []  # sent: out of the agenda
        clock.at = T0 + timedelta(minutes=20)
        await service.on_timer(clock.at)  # missed: reassigned, due again in 15 minutes
        doc = await service.repo.task(TENANT, task.task_id)
        assert doc["previous_consultant_id"] == task.consultant_id
        assert [e.due_at for e in await service.repo.task_agenda.due(T0 + timedelta(hours=2), 10)] == [doc["due_at"]]
        clock.at = T0 + timedelta(minutes=40)
        await service.on_timer(clock.at)  # missed again: breached; its next look is the pool, days away
        assert (await service.repo.task(TENANT, task.task_id))["breached_at"] == clock.at
        assert await service.repo.task_agenda.due(T0 + timedelta(days=30), 10) == []
        for collection in ("tasks", "task_pushes", "repurchase_reminders"):
            assert not commands.reads_of(collection) or by_id_only(commands.reads_of(collection)), collection
        assert by_id_only(commands.reads_of("tasks"))

        # Half a day on, the sweeps enter what comes within a day: the return to the pool, the reminder.
        clock.at = T0 + timedelta(days=3, hours=1)
        await service.on_timer(clock.at)
        assert (await service.repo.task(TENANT, task.task_id))["queue"] == "pool"
        clock.at = T0 + timedelta(days=25, minutes=2)
        [reminded] = created(await service.on_timer(clock.at))
        assert (reminded.reason, reminded.one_id) == ("repurchase_due", "p9")
        assert await service.repo.reminder_agenda.due(T0 + timedelta(days=90), 10) == []


async def test_a_merged_persons_task_is_looked_at_by_the_worker_of_the_person_it_moved_to(db):
    clock = Clock(T0)
    service = await notify_service(db, clock)
    await service.on_timer(T0)  # the first run sweeps; the sweep would mend the entry below by itself
    [kept] = created(await service.on_score_changed(scored("w", 1, Grade.H, None)))
    [moved] = created(await service.on_score_changed(scored("l", 2, Grade.H, None)))
    await service.on_identity_changed(PersonsMerged(merge_id="m1", tenant_id=TENANT, winner="w", loser="l",
                                                    cause_identifier_type="phone", event_id="e-m1", merged_at=T0))
    owners = {e.key: e.owner for e in await service.repo.task_agenda.due(T0 + timedelta(days=30), 10)}
    assert owners == {kept.task_id: "w", moved.task_id: "w"}
    # A merge that died before it moved the entry leaves it naming the loser: the loser's worker (here
    # the only one) hands it on to the winner's, and the deadline is still kept.
    doc = await service.repo.task(TENANT, moved.task_id)
    await service.repo.task_agenda.schedule(TENANT, moved.task_id, doc["due_at"], person="l")
    service.owns = lambda one_id: one_id != "w"  # the loser's worker only
    await service.on_timer(T0 + timedelta(minutes=20))
    owners = {e.key: e.owner for e in await service.repo.task_agenda.due(T0 + timedelta(days=30), 10)}
    untouched = await service.repo.task(TENANT, moved.task_id)  # not the loser's worker's to escalate
    assert owners[moved.task_id] == "w" and untouched["consultant_id"] == moved.consultant_id
    assert "previous_consultant_id" not in untouched and "breached_at" not in untouched
    service.owns = lambda one_id: one_id == "w"  # the winner's worker
    await service.on_timer(T0 + timedelta(minutes=20))
    assert (await service.repo.task(TENANT, moved.task_id))["previous_consultant_id"] == moved.consultant_id
    # An entry naming the loser of a task that waits for nothing any more (answered) goes, rather than
    # being handed on for ever.
    await service.repo.update_task(moved.task_id, {"first_response_at": T0 + timedelta(minutes=21)})
    await service.repo.task_agenda.schedule(TENANT, moved.task_id, T0 + timedelta(minutes=22), person="l")
    service.owns = lambda one_id: one_id != "w"
    await service.on_timer(T0 + timedelta(minutes=25))
    assert moved.task_id not in {e.key for e in await service.repo.task_agenda.due(T0 + timedelta(days=30), 10)}


async def test_a_purchase_in_flight_when_its_person_was_erased_sets_no_reminder(db):
    clock = Clock(T0)
    service = await notify_service(db, clock, repurchase={"cycles": {"益生菌": 30}, "remind_days_before": 5})
    await service.on_identity_changed(PersonErased(erasure_id="er1", tenant_id=TENANT, one_id="p9", one_ids=["p9"],
                                                   requested_by="admin", event_id="e-er1", erased_at=T0))
    bought = scored("p9", 1, Grade.O, Grade.A, EventType.PURCHASE_COMPLETED)
    await service.on_score_changed(bought.model_copy(update={"lead": bought.lead.model_copy(update={
        "stage": Stage.CUSTOMER, "product": "益生菌"})}))
    assert await service.repo.reminders.count_documents({}) == 0
    assert await service.repo.reminder_agenda.due(T0 + timedelta(days=90), 10) == []


async def test_performance_compares_conversions_with_what_the_grades_predict(infra, db, unique):
    clock = Clock(T0)
    prefix = f"it{unique}."
    ensure_topics(infra.kafka_bootstrap, prefix=prefix, specs=(TASKS_OUTCOMES,))
    service = await notify_service(db, clock)
    service._producer, service._prefix = EventProducer(infra.kafka_bootstrap), prefix
    try:
        for n in range(6):
            [task] = created(await service.on_score_changed(scored(f"p{n}", 1, Grade.H if n < 3 else Grade.C, None)))
            clock.at = T0 + timedelta(minutes=5 + n)
            await service.record_outcome(tenant_id=TENANT, task_id=task.task_id, outcome=Outcome.CONTACTED, reason=None,
                                         note=None, consultant_id=None)
            won = n in (0, 1, 3)
            await service.record_outcome(tenant_id=TENANT, task_id=task.task_id,
                                         outcome=Outcome.WON if won else Outcome.LOST, reason=None, note=None,
                                         consultant_id=None)
    finally:
        service._producer.close()
    rows = {p.consultant_id: p for p in await service.performance(TENANT, days=30)}
    assert sum(p.tasks for p in rows.values()) == 6 and sum(p.conversions for p in rows.values()) == 3
    assert all(p.responded == p.tasks and p.sla_adherence == 1.0 for p in rows.values())
    assert round(sum(p.expected_conversions for p in rows.values()), 3) == 3.0  # the grades' rates add up to the total
    consultants = await service.repo.consultants_with_load(TENANT)
    assert sum(c.open_tasks for c in consultants) == 0 and any(c.conversion for c in consultants)


# ---- pushes ------------------------------------------------------------------------------------------


async def test_a_new_task_is_pushed_once_per_version_with_retries_and_never_twice_after_a_crash(db):
    secret, received, fail_next = b"s3cret", [], [1]

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if fail_next[0]:
            fail_next[0] -= 1
            return web.Response(status=503)
        assert verify_signature(secret, request.headers["X-Leadflow-Signature"], body, int(datetime.now(UTC).timestamp()))
        received.append((request.headers["X-Leadflow-Push-Id"], body))
        return web.Response(status=204)

    clock = Clock(T0)
    async with serving("/hook", hook) as url, httpx.AsyncClient() as client:
        policies = parse_policies({"default": {"hours": ALWAYS_OPEN, "delivery": {
            "channels": ["inbox", "webhook"], "webhook_url": url}}})
        service = make_service(db, policies=policies, clock=clock)
        service.channels["webhook"] = WebhookChannel(secret, client)
        await service.repo.ensure_indexes()
        await service.outbox.ensure_indexes()
        await service.upsert_consultant(tenant_id=TENANT, consultant_id="c1",
                                        fields={"name": "c1", "store_id": "s1", "capacity": 50, "active": True})
        change = scored("p1", 1, Grade.H, None)
        [task] = created(await service.on_score_changed(change))
        await service.on_score_changed(change)  # a replay queues nothing new
        await service.deliver(T0)
        pushes = {p["channel"]: p for p in await service.pushes_of(TENANT, task.task_id)}
        assert (pushes["inbox"]["status"], pushes["webhook"]["status"], pushes["webhook"]["attempts"]) == (
            "sent", "retrying", 1)
        [message] = await service.inbox(TENANT, "c1")
        assert message["title"].startswith("新线索（H级）：李** · Model Y") and "1" not in message["body"].split("评分")[0]
        await service.deliver(T0)  # not due yet: back-off
        assert received == []
        await service.deliver(T0 + timedelta(minutes=1))
        await service.deliver(T0 + timedelta(minutes=2))
        assert [r[0] for r in received] == [pushes["webhook"]["_id"]]
        assert {p["status"] for p in await service.pushes_of(TENANT, task.task_id)} == {"sent"}

        # The next version (a reassignment) is a new push; one marked `sending` by a worker that died is
        # never sent again.
        clock.at = T0 + timedelta(minutes=30)
        other = scored("p2", 1, Grade.H, None)
        [task2] = created(await service.on_score_changed(other))
        [hook_push] = [p for p in await service.pushes_of(TENANT, task2.task_id) if p["channel"] == "webhook"]
        await service.outbox.mark_sending(hook_push["_id"], clock.at)
        await service.deliver(clock.at + timedelta(minutes=5))
        assert len(received) == 1


async def test_a_consultants_phone_is_not_buzzed_in_quiet_hours_or_beyond_the_hourly_limit(db):
    class Mailbox:
        def __init__(self) -> None:
            self.received: list[str] = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            self.received.append(envelope.content.decode("utf-8", "replace"))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        clock = Clock(T0)  # 10:00 in Shanghai
        policies = parse_policies({"default": {"hours": ALWAYS_OPEN, "delivery": {
            "channels": ["inbox", "email"], "quiet_hours": "22:00-08:00", "max_per_hour": 1}}})
        service = make_service(db, policies=policies, clock=clock)
        service.channels["email"] = EmailChannel("127.0.0.1", port, "leadflow@example.test")
        await service.repo.ensure_indexes()
        await service.outbox.ensure_indexes()
        await service.upsert_consultant(tenant_id=TENANT, consultant_id="c1", fields={
            "name": "c1", "store_id": "s1", "capacity": 50, "active": True, "email": "c1@example.test"})
        await service.on_score_changed(scored("p1", 1, Grade.H, None))
        await service.on_score_changed(scored("p2", 1, Grade.H, None))
        await service.deliver(T0)
        assert len(mailbox.received) == 1  # the second waits: one e-mail an hour for this consultant
        waiting = [p for p in await service.outbox.pushes.find({"channel": "email", "status": "pending"}).to_list()]
        assert [(p["deferred"], p["next_attempt_at"]) for p in waiting] == [("rate_limit", T0 + timedelta(minutes=5))]
        inbox = await service.inbox(TENANT, "c1")
        assert len(inbox) == 2  # the in-app inbox is never held back

        night = T0 + timedelta(hours=13)  # 23:00 in Shanghai
        clock.at = night
        await service.on_score_changed(scored("p3", 1, Grade.H, None))
        await service.deliver(night)
        held = await service.outbox.pushes.find({"channel": "email", "status": "pending"}).to_list()
        assert {p["deferred"] for p in held} == {"quiet_hours"}
        morning = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
        assert {p["next_attempt_at"] for p in held} == {morning}
        await service.deliver(morning)
        assert len(mailbox.received) == 2  # one more in the morning; the hourly limit holds the other
    finally:
        controller.stop()


async def test_a_health_customer_is_reminded_before_their_supply_runs_out(db):
    clock = Clock(T0)
    service = await notify_service(db, clock, repurchase={"cycles": {"益生菌": 30}, "remind_days_before": 5})
    bought = scored("p1", 1, Grade.O, Grade.A, EventType.PURCHASE_COMPLETED)
    bought = bought.model_copy(update={"lead": bought.lead.model_copy(update={
        "stage": Stage.CUSTOMER, "product": "益生菌", "owner": Owner(consultant_id="c2", store_id="s1", since=T0)})})
    assert created(await service.on_score_changed(bought)) == []  # a customer: no sales task
    await service.on_score_changed(bought)  # a replay sets nothing new
    assert created(await service.on_timer(T0 + timedelta(days=24))) == []
    [task] = created(await service.on_timer(T0 + timedelta(days=25, minutes=2)))
    assert (task.reason, task.consultant_id, task.grade) == ("repurchase_due", "c2", Grade.O)
    assert created(await service.on_timer(T0 + timedelta(days=25, minutes=3))) == []  # reminded once
    await service.deliver(T0 + timedelta(days=25, minutes=3))
    [message] = await service.inbox(TENANT, "c2")
    assert message["title"].startswith("复购提醒（O级）：李** · 益生菌")
    assert message["task_id"] == task.task_id


async def test_a_new_lead_is_acknowledged_to_the_customer_at_once_through_its_source(db):
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=200)

    clock = Clock(T0)  # 10:00 in Shanghai: a B lead is due in 24 working hours
    async with serving("/ack", hook) as url, httpx.AsyncClient() as client:
        service = await notify_service(db, clock, delivery={"acknowledge_url": url})
        service.channels["webhook"] = WebhookChannel(b"k", client)
        await service.outbox.ensure_indexes()
        await service.upsert_consultant(tenant_id=TENANT, consultant_id="c1", fields={
            "name": "王芳", "store_id": "s1", "capacity": 50, "active": True})
        await service.upsert_consultant(tenant_id=TENANT, consultant_id="c2", fields={
            "name": "李雷", "store_id": "s1", "capacity": 50, "active": False})
        [task] = created(await service.on_score_changed(scored("p1", 1, Grade.B, None)))
        await service.on_score_changed(scored("p1", 2, Grade.B, Grade.B, EventType.PAGE_VIEWED))  # no new ack
        await service.deliver(T0)
    [ack] = received
    assert ack["type"] == "customer_ack" and ack["event_id"] == "e-p1-1" and ack["channel"] == "web"
    assert ack["text"] == "您好，您的专属顾问王芳将于11月3日 10:00前与您联系。" and task.consultant_id == "c1"


async def test_the_timer_counts_open_tasks_per_queue_for_the_gauge(db):
    from prometheus_client import REGISTRY

    clock = Clock(T0)
    service = await notify_service(db, clock)
    for n in range(3):
        await service.on_score_changed(scored(f"g{n}", 1, Grade.B, None))
    await service.on_timer(T0 + timedelta(minutes=1))  # the first run counts
    assert REGISTRY.get_sample_value("leadflow_open_tasks", {"tenant": TENANT, "queue": "sales"}) == 3


async def test_a_task_is_sent_again_only_while_the_broker_has_not_acknowledged_it(db):
    """Leads and scoring answer a replay by sending their last change again; if notify did the same for
    every change that names the task's trigger, tasks.events → leads → scoring → notify went round for
    ever. Notify sends a task again only for a replay of the change that made it, before the ack."""
    clock = Clock(T0)
    service = await notify_service(db, clock)
    change = scored("loop", 1, Grade.B, None)
    first = await service.on_score_changed(change)
    [task] = created(first)
    replayed = await service.on_score_changed(change)  # the worker died before the broker acknowledged
    assert created(replayed) == [task]
    await replayed.after_emit()  # acknowledged this time
    assert created(await service.on_score_changed(change)) == []
    # The change the assignment causes names the same trigger, but it is another change: no task again.
    assignment = change.model_copy(update={"change_id": "g-loop-1-assignment", "score": 41.0})
    assert created(await service.on_score_changed(assignment)) == []
    assert len(await service.tasks(tenant_id=TENANT, consultant_id=None, status=None, one_id="loop")) == 1


async def test_the_timer_repairs_a_consultants_load_that_a_crash_left_wrong(db):
    clock = Clock(T0)
    service = await notify_service(db, clock)
    for n in range(3):
        await service.on_score_changed(scored(f"load{n}", 1, Grade.B, None))
    owners = [t["consultant_id"] for t in await service.tasks(tenant_id=TENANT, consultant_id=None, status=None)]
    # A worker killed between a task's insert and the increment of its consultant's load:
    await service.repo.count_open_task(TENANT, owners[0], -1)
    await service.upsert_consultant(tenant_id=TENANT, consultant_id="m1", fields={"open_tasks": 7})
    await service.on_timer(T0 + timedelta(minutes=1))  # the first run counts
    loads = {c.consultant_id: c.open_tasks for c in await service.repo.consultants_with_load(TENANT)}
    assert loads == {cid: owners.count(cid) for cid in ("c1", "c2", "m1")}


async def test_the_api_and_the_worker_changing_one_consultant_at_once_lose_nothing(infra, db, unique):
    """Consultants close tasks through the API while the worker opens new ones for them: both change the
    consultants' counters, and FerretDB v1 applies even `$inc` as a read and a write of the document."""
    clock = Clock(T0)
    prefix = f"it{unique}."
    ensure_topics(infra.kafka_bootstrap, prefix=prefix, specs=(TASKS_OUTCOMES,))
    worker = await notify_service(db, clock)
    api = make_service(db, policies=worker.policies, clock=clock)
    api._producer, api._prefix = EventProducer(infra.kafka_bootstrap), prefix
    try:
        first = [t for n in range(12) for t in created(await worker.on_score_changed(scored(f"p{n}", 1, Grade.H, None)))]

        async def close(task: TaskCreated) -> None:
            await api.record_outcome(tenant_id=TENANT, task_id=task.task_id, outcome=Outcome.WON, reason=None,
                                     note=None, consultant_id=None)

        async def open_(n: int) -> list[TaskCreated]:
            return created(await worker.on_score_changed(scored(f"q{n}", 1, Grade.H, None)))

        results = await asyncio.gather(*(close(t) for t in first), *(open_(n) for n in range(12)))
    finally:
        api._producer.close()
    opened = [t for r in results if r for t in r]
    assert len(first) == len(opened) == 12
    for consultant in ("c1", "c2"):
        doc = await worker.repo.consultants.find_one({"_id": f"{TENANT}\x1f{consultant}"})
        mine_open = sum(t.consultant_id == consultant for t in opened)
        mine_closed = sum(t.consultant_id == consultant for t in first)
        assert (doc.get("open_tasks", 0), doc.get("closed", 0), doc.get("converted", 0)) == (
            mine_open, mine_closed, mine_closed), consultant
    for task in first:
        assert (await worker.repo.task(TENANT, task.task_id))["status"] != "open"


async def test_the_delivery_timer_waits_a_minute_for_the_push_of_an_entry_before_dropping_it(db):
    """The delivery timer takes no lease: it may read an entry that `enqueue` has written and the push
    that `enqueue` writes next not yet. Dropping the entry then would leave the push unsent until the
    next sweep, half a day later."""
    outbox = PushOutbox(db)
    await outbox.ensure_indexes()
    outbox.agenda.clock = lambda: T0
    await outbox.due(T0, 10)  # the process's first run sweeps: nothing yet
    push = Push.of(tenant_id=TENANT, task_id="task-1", task_version=1, channel="inbox", recipient="c1",
                   title="新线索", body="李**")
    await outbox.agenda.schedule(TENANT, push.push_id, T0)  # enqueue's first write ...
    assert await outbox.due(T0 + timedelta(seconds=2), 10) == []  # ... read by the timer before its second
    assert [e.key for e in await outbox.agenda.due(T0 + timedelta(seconds=2), 10)] == [push.push_id]
    assert await outbox.enqueue(push, "c1", T0)  # the push (the entry is written again: it stays at T0)
    assert [d["_id"] for d in await outbox.due(T0 + timedelta(seconds=4), 10)] == [push.push_id]
    # An entry whose push never came (its worker died between the two writes) goes after the minute.
    await outbox.agenda.schedule(TENANT, "gone", T0)
    waited, past = T0 + QUEUEING - timedelta(seconds=1), T0 + QUEUEING + timedelta(seconds=1)
    await outbox.due(waited, 10)
    assert "gone" in [e.key for e in await outbox.agenda.due(waited, 10)]
    await outbox.due(past, 10)
    assert "gone" not in [e.key for e in await outbox.agenda.due(past, 10)]


async def test_a_timer_run_cut_short_after_a_missed_deadline_still_queues_its_pushes_on_the_next_run(db):
    """The timer writes the escalation, then queues its pushes: a run that fails in between (here the
    queueing itself, once) must leave the task owing them, and the next run queue them, once."""
    clock = Clock(T0)
    service = await notify_service(db, clock)
    await service.outbox.ensure_indexes()
    [task] = created(await service.on_score_changed(scored("p1", 1, Grade.H, None)))
    announce = service.pusher.announce
    failures = []

    async def failing_once(*args, **kwargs):
        if not failures:
            failures.append(args)
            raise ConnectionError("the store went away")  # a transient failure between the two writes
        await announce(*args, **kwargs)

    service.pusher.announce = failing_once
    clock.at = T0 + timedelta(minutes=20)
    with pytest.raises(ConnectionError):
        await service.on_timer(clock.at)  # missed: reassigned, but its pushes were not queued
    doc = await service.repo.task(TENANT, task.task_id)
    assert doc["version"] == 2 and doc["pushes_owed_to"] == [doc["consultant_id"], "m1"]
    version_2 = [p for p in await service.outbox.of_task(TENANT, task.task_id) if p["task_version"] == 2]
    assert version_2 == []

    await service.on_timer(clock.at + timedelta(seconds=30))  # the next run: not overdue any more
    doc = await service.repo.task(TENANT, task.task_id)
    assert "pushes_owed_to" not in doc and doc["version"] == 2
    version_2 = [p for p in await service.outbox.of_task(TENANT, task.task_id) if p["task_version"] == 2]
    assert sorted(p["consultant_id"] for p in version_2) == sorted([doc["consultant_id"], "m1"])
    await service.on_timer(clock.at + timedelta(minutes=1))
    again = [p for p in await service.outbox.of_task(TENANT, task.task_id) if p["task_version"] == 2]
    assert len(again) == len(version_2)
