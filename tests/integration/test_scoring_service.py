"""Scoring against the real store (and the real broker for the consumer path): the decay timer, a
timer change that did not reach the broker, outcomes as signals and as lessons for the model (once,
however often replayed), the held-out quality report, and a rescore after a rule change."""

from __future__ import annotations

import pytest

from datetime import UTC, datetime, timedelta


from schemas.leads import LeadSnapshot, LeadUpdated, Stage, Trigger, Verdict
from schemas.scores import Grade, ScoreChanged
from schemas.tasks import Outcome, TaskOutcomeRecorded
from schemas.topics import SCORES_CHANGES, TASKS_OUTCOMES, dead_letter_topic
from schemas.touchpoints import EventType
from leadflow.runtime.agenda import Entry
from services.scoring.adapters.repository import RescoreReplaced
from services.scoring.bootstrap import make_service
from services.scoring.domain.rules import RuleBook, builtin, parse_rules
from tests.integration.store_kit import by_id_only, watched
from tests.integration.kafka_kit import process_through_policy, read_all

T0 = datetime(2025, 9, 1, 8, tzinfo=UTC)
TENANT = "t1"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def lead(at: datetime, stage: Stage = Stage.LEAD) -> LeadSnapshot:
    return LeadSnapshot(verdict=Verdict.VALID, stage=stage, reachable=True, touchpoints=1, first_seen_at=T0, last_seen_at=at)


def change(one_id: str, n: int, kind: EventType, at: datetime, *, stage: Stage = Stage.LEAD) -> LeadUpdated:
    return LeadUpdated(change_id=f"c-{one_id}-{n}", tenant_id=TENANT, one_id=one_id, version=n,
                       trigger=Trigger(event_id=f"e-{one_id}-{n}", event_type=kind, occurred_at=at, channel="web"),
                       lead=lead(at, stage))


def outcome(one_id: str, kind: Outcome, at: datetime, n: int = 1) -> TaskOutcomeRecorded:
    return TaskOutcomeRecorded(outcome_id=f"o-{one_id}-{n}", task_id=f"t-{one_id}", tenant_id=TENANT, one_id=one_id,
                               outcome=kind, recorded_at=at)


HOT = (EventType.FORM_SUBMITTED, EventType.TEST_DRIVE_BOOKED, EventType.STORE_VISITED, EventType.QUOTE_REQUESTED)


async def scoring(db, clock: Clock, rules: RuleBook | None = None):
    service = make_service(db, rules=rules, clock=clock)
    await service.ensure_indexes()
    return service


async def hot_person(service, clock: Clock, one_id: str, at: datetime) -> list[ScoreChanged]:
    out = []
    for n, kind in enumerate(HOT, start=1):
        clock.at = at + timedelta(minutes=n)
        out += [o.value for o in (await service.on_lead_updated(change(one_id, n, kind, clock.at))).outgoing]
    return out


def scores(handled) -> list[ScoreChanged]:
    return [o.value for o in handled.outgoing if o.topic == SCORES_CHANGES]


# ---- the decay timer --------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "one of several workers"])
async def test_a_quiet_lead_falls_on_the_timer_and_only_real_changes_are_emitted(db, shared):
    clock = Clock(T0)
    service = await scoring(db, clock)
    service.guard.sole = lambda: not shared
    told = await hot_person(service, clock, "p1", T0)
    assert told[-1].grade is Grade.H
    assert not scores(await service.on_timer(T0 + timedelta(hours=1)))  # not due yet

    later = T0 + timedelta(days=14)
    handled = await service.on_timer(later)
    decayed = scores(handled)
    assert [(c.one_id, c.cause, c.previous_grade, c.grade) for c in decayed] == [("p1", "decay", Grade.H, Grade.B)]
    assert "13 天无互动 −10" in [c.text for c in decayed[0].contributions]
    assert "repeat_inquiry" in [c.signal for c in decayed[0].contributions]  # the test drive and quote came after the form
    await handled.after_emit()

    # Six hours on, the score moved less than the tenant's delta: stored, not told.
    quiet = await service.on_timer(later + timedelta(hours=6, minutes=5))
    assert not scores(quiet)
    doc = await service.get(TENANT, "p1")
    assert doc["scored_at"] == later + timedelta(hours=6, minutes=5) and doc["emitted"]["score"] == decayed[0].score
    assert doc["score"] < decayed[0].score

    # A month on it has fallen to nothing: told once more, and never looked at again.
    gone = await service.on_timer(T0 + timedelta(days=30))
    assert [(c.score, c.grade) for c in scores(gone)] == [(0.0, Grade.C)]
    assert (await service.get(TENANT, "p1"))["rescore_at"] is None


async def test_a_timer_change_the_broker_did_not_acknowledge_is_sent_again_with_the_same_id(db):
    clock = Clock(T0)
    service = await scoring(db, clock)
    await hot_person(service, clock, "p1", T0)
    first = scores(await service.on_timer(T0 + timedelta(days=30)))  # "crash": after_emit never runs
    again = await service.on_timer(T0 + timedelta(days=30, minutes=1))
    assert [c.change_id for c in scores(again)] == [c.change_id for c in first]
    await again.after_emit()
    assert not scores(await service.on_timer(T0 + timedelta(days=30, minutes=2)))


async def test_the_timer_finds_due_persons_in_its_agenda_and_reads_the_scores_only_by_id(infra, db):
    async with watched(infra, db) as (watched_db, commands):
        clock = Clock(T0)
        service = await scoring(watched_db, clock)
        agenda = service.repo.agenda
        agenda.clock = clock  # the wall clock the horizon is kept by
        assert not scores(await service.on_timer(T0))  # the first run sweeps: nothing yet
        commands.clear()
        await hot_person(service, clock, "p1", T0)
        # Four changes, one agenda write: the later saves found p1 entered early enough.
        assert commands.writes_to("score_agenda") == 1
        due = (await service.get(TENANT, "p1"))["rescore_at"]
        [entry] = await agenda.due(T0 + agenda.horizon, 10)
        assert entry.key == "p1" and entry.due_at < due
        commands.clear()
        clock.at = entry.due_at + timedelta(minutes=1)
        assert not scores(await service.on_timer(clock.at))  # early: the entry moves to the re-score time
        assert [e.due_at for e in await agenda.due(T0 + agenda.horizon, 10)] == [due]
        clock.at = due + timedelta(minutes=1)
        assert not scores(await service.on_timer(clock.at))  # re-scored; it moved too little to tell
        assert (await service.get(TENANT, "p1"))["scored_at"] == clock.at
        clock.at += timedelta(minutes=1)
        assert not scores(await service.on_timer(clock.at))  # the entry the save kept moves on
        assert [e.due_at for e in await agenda.due(T0 + agenda.horizon * 2, 10)] == [
            (await service.get(TENANT, "p1"))["rescore_at"]]
        assert by_id_only(commands.reads_of("scores")), commands.reads_of("scores")  # no scan
        # A month on it has fallen to nothing: told, due at once until the broker has it, then never again.
        clock.at = T0 + timedelta(days=30)
        handled = await service.on_timer(clock.at)
        assert [(c.one_id, c.cause, c.grade) for c in scores(handled)] == [("p1", "decay", Grade.C)]
        assert [e.key for e in await agenda.due(clock.at, 10)] == ["p1"]
        await handled.after_emit()
        assert await agenda.due(clock.at + agenda.horizon * 30, 10) == []


async def test_customers_and_zero_scores_are_not_rescored(db):
    clock = Clock(T0)
    service = await scoring(db, clock)
    await service.on_lead_updated(change("won", 1, EventType.ORDER_PLACED, T0, stage=Stage.CUSTOMER))
    await service.on_lead_updated(change("cold", 1, EventType.UNSUBSCRIBED, T0))
    assert (await service.get(TENANT, "won"))["grade"] == "O"
    assert not scores(await service.on_timer(T0 + timedelta(days=90)))
    assert (await service.get(TENANT, "won"))["rescore_at"] is None


# ---- outcomes ---------------------------------------------------------------------------------------


async def test_an_outcome_is_a_signal_and_a_replay_changes_nothing(db):
    clock = Clock(T0)
    service = await scoring(db, clock)
    await service.on_lead_updated(change("p1", 1, EventType.FORM_SUBMITTED, T0))
    clock.at = T0 + timedelta(minutes=1)
    first = scores(await service.on_outcome(outcome("p1", Outcome.APPOINTMENT_SET, clock.at)))
    assert [(c.cause, c.score) for c in first] == [("outcome", 50.0)]
    assert "已约到店 刚刚 +20" in [c.text for c in first[0].contributions]
    replay = scores(await service.on_outcome(outcome("p1", Outcome.APPOINTMENT_SET, clock.at)))
    assert [c.change_id for c in replay] == [first[0].change_id]  # sent again, not applied again
    assert (await service.get(TENANT, "p1"))["score"] == 50.0
    assert not scores(await service.on_outcome(outcome("nobody", Outcome.WON, clock.at)))


async def test_the_model_learns_each_person_once_and_reports_held_out_quality(db):
    clock = Clock(T0)
    service = await scoring(db, clock)
    for i in range(12):
        one_id, at = f"p{i}", T0 + timedelta(hours=i)
        kinds = HOT if i % 2 == 0 else (EventType.PAGE_VIEWED,)
        for n, kind in enumerate(kinds, start=1):
            clock.at = at + timedelta(minutes=n)
            await service.on_lead_updated(change(one_id, n, kind, clock.at))
        clock.at = at + timedelta(days=2)
        label = Outcome.WON if i % 2 == 0 else Outcome.LOST
        await service.on_outcome(outcome(one_id, label, clock.at))
        await service.on_outcome(outcome(one_id, label, clock.at))  # a replay teaches nothing
        await service.on_outcome(outcome(one_id, Outcome.ORDERED, clock.at, n=2))  # a second label: the person taught already
    rules, stored, quality = await service.model_report(TENANT)
    assert (stored.model.n, stored.model.positives, stored.model.version) == (12, 6, 12)
    assert len(stored.applied) == 12 and quality.n == 12
    assert quality.auc["rules"] == 1.0  # hot journeys outrank page views, before any outcome was seen
    assert stored.model.weights["test_drive_booked"] > 0 > stored.model.weights["page_viewed"]

    fresh = await scoring(db, clock)  # another worker (or a restart) reads the same model
    _, reloaded, _ = await fresh.model_report(TENANT)
    assert reloaded.model == stored.model
    # The next score carries the model's probability and version; below min_outcomes it is not blended.
    clock.at = T0 + timedelta(days=3)
    out = scores(await fresh.on_lead_updated(change("new", 1, EventType.FORM_SUBMITTED, clock.at)))
    assert out[0].model_version == 12 and out[0].probability is not None and out[0].blend_weight == 0.0


async def test_outcomes_flow_through_the_consumer_policy_and_bad_records_are_dead_lettered(infra, db, unique):
    clock = Clock(T0)
    service = await scoring(db, clock)
    await service.on_lead_updated(change("p1", 1, EventType.FORM_SUBMITTED, T0))
    prefix = f"it{unique}."
    dlq = dead_letter_topic(TASKS_OUTCOMES, "scoring")
    records = [outcome("p1", Outcome.INVALID_NUMBER, T0 + timedelta(hours=1)).to_bytes(), b"\xff\xfe", b"{}"]
    await process_through_policy(infra, service="scoring", source=TASKS_OUTCOMES, prefix=prefix, outputs=(SCORES_CHANGES,),
                                 key=b"p1", records=records, decode=TaskOutcomeRecorded.from_bytes,
                                 handle=service.on_outcome)
    out = [ScoreChanged.model_validate_json(r.value) for r in read_all(infra, SCORES_CHANGES.qualified(prefix))]
    assert [(c.one_id, c.cause, c.score) for c in out] == [("p1", "outcome", 0.0)]
    assert len(read_all(infra, dlq.qualified(prefix))) == 2
    _, stored, _ = await service.model_report(TENANT)
    assert stored.model.n == 1 and stored.model.positives == 0


# ---- rescore after a rule change --------------------------------------------------------------------


async def test_a_rescore_after_a_rule_change_emits_only_real_changes(db):
    clock = Clock(T0)
    service = await scoring(db, clock)
    await service.on_lead_updated(change("form", 1, EventType.FORM_SUBMITTED, T0))  # 30: B
    await service.on_lead_updated(change("view", 1, EventType.PAGE_VIEWED, T0))  # 2: C
    await service.on_lead_updated(change("other", 1, EventType.FORM_SUBMITTED, T0).model_copy(update={"tenant_id": "t2"}))

    stricter = parse_rules({"extends": "car_dealer", "name": "car-dealer", "version": 2, "grades": {"B": 35}}, origin="t")
    changed = await scoring(db, clock, RuleBook(builtin("car_dealer"), {TENANT: stricter}))  # restarted with new rules
    assert await changed.request_rescore(TENANT, "r1") == 2
    handled = await changed.on_timer(T0 + timedelta(minutes=1))
    out = scores(handled)
    assert [(c.one_id, c.cause, c.previous_grade, c.grade, c.rules) for c in out] == [
        ("form", "rescore", Grade.B, Grade.C, "car-dealer@2")]
    await handled.after_emit()
    assert await changed.rescore_progress(TENANT, "r1") == (0, 1)
    assert (await changed.get("t2", "other"))["rules"] == "car-dealer@1"  # another tenant is untouched
    assert not scores(await changed.on_timer(T0 + timedelta(minutes=2)))


async def test_a_rescore_request_writes_no_score_and_reaches_a_person_whose_entry_was_settled_late(infra, db):
    async with watched(infra, db) as (watched_db, commands):
        clock = Clock(T0)
        service = await scoring(watched_db, clock)
        await service.on_lead_updated(change("form", 1, EventType.FORM_SUBMITTED, T0))
        before = await service.get(TENANT, "form")
        await service.on_timer(T0 + timedelta(seconds=30))  # this process's first sweep
        clock.at = at = T0 + timedelta(minutes=1)
        commands.clear()
        assert await service.request_rescore(TENANT, "r1") == 1
        # The workers are the only writers of scores: a score saved while the request is made is never lost.
        assert commands.writes_to("scores") == 0
        assert await service.rescore_progress(TENANT, "r1") == (1, 0)
        # The timer had read the person before the request (due at `before`'s re-score time) and settles
        # the entry after it: the entry is later than the person's turn now.
        await service.repo.agenda.settle(Entry(TENANT, "form", T0), before["rescore_at"], at)
        await service.on_timer(at)  # answers the request with a sweep; re-scores at the request's very time
        assert await service.rescore_progress(TENANT, "r1") == (0, 0)  # same rules: re-scored, nothing to tell
        after = await service.get(TENANT, "form")
        assert (after["rescored_for"], after["scored_at"], after["version"]) == ("r1", at, before["version"] + 1)
        await service.on_timer(at)
        assert (await service.get(TENANT, "form"))["version"] == after["version"]  # once per request


async def test_a_sweep_that_answers_a_request_from_its_future_brings_the_persons_turn_forward(db):
    clock = Clock(T0)
    service = await scoring(db, clock)
    await service.on_lead_updated(change("form", 1, EventType.FORM_SUBMITTED, T0))
    await service.on_timer(T0 + timedelta(seconds=30))
    clock.at = T0 + timedelta(minutes=1)  # the CLI's clock, ahead of the run that sees its request
    await service.request_rescore(TENANT, "r1")
    await service.on_timer(T0 + timedelta(seconds=40))  # sweeps for the request: too early to re-score
    assert await service.rescore_progress(TENANT, "r1") == (1, 0)
    await service.on_timer(T0 + timedelta(minutes=1, seconds=10))  # the person's decay is hours away
    assert await service.rescore_progress(TENANT, "r1") == (0, 0)


async def test_a_later_request_replaces_an_earlier_one(db):
    clock = Clock(T0)
    service = await scoring(db, clock)
    await service.on_lead_updated(change("form", 1, EventType.FORM_SUBMITTED, T0))
    clock.at = T0 + timedelta(minutes=1)
    await service.request_rescore(TENANT, "r1")
    clock.at = T0 + timedelta(minutes=2)
    await service.request_rescore(TENANT, "r2")
    with pytest.raises(RescoreReplaced) as replaced:
        await service.rescore_progress(TENANT, "r1")
    assert replaced.value.by == "r2"
    await service.on_timer(T0 + timedelta(minutes=3))
    assert await service.rescore_progress(TENANT, "r2") == (0, 0)
    assert (await service.get(TENANT, "form"))["rescored_for"] == "r2"


async def test_the_explanation_and_the_last_change_are_stored_as_text_and_read_as_structures(db):
    clock = Clock(T0)
    service = await scoring(db, clock)
    told = await hot_person(service, clock, "p1", T0)
    raw = await db["scores"].find_one({"tenant_id": "t1", "one_id": "p1"})
    assert isinstance(raw["contributions"], str) and isinstance(raw["last_change"], str)  # one value each for FerretDB
    doc = await service.repo.get("t1", "p1")
    assert doc["contributions"] == [c.model_dump(mode="json") for c in told[-1].contributions]
    assert ScoreChanged.model_validate(doc["last_change"]) == told[-1]
    assert (await service.repo.many("t1", ["p1"]))["p1"]["contributions"] == doc["contributions"]
