"""The leads domain end to end, purely: a touchpoint cleaned, assessed and applied to a person's lead;
outcomes, assignments, referral credits and the timer. The rules themselves have their own tests
(test_leads_cleaning, test_leads_quality, test_leads_lifecycle, test_leads_source_quality)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.leads import CollisionResolution, Route, Stage, Verdict
from schemas.tasks import Outcome, TaskCreated, TaskOutcomeRecorded
from schemas.scores import Grade
from schemas.touchpoints import EventType, IdentifierType
from services.leads.domain.lead import (
    RECENT_EVENTS_KEPT,
    Lead,
    apply_outcome,
    assign,
    credit,
    due_at,
    tick,
)
from services.leads.domain.policy import CollisionPolicy
from services.leads.domain.quality import QualityPolicy
from tests.unit.leads_kit import POLICY, T0, device, form, identified, lead_of, phone, step

NO_DB = settings(database=None)


def outcome(kind: Outcome, n: int = 1, *, minute: float = 60, reason: str | None = None, one_id: str = "w") -> TaskOutcomeRecorded:
    return TaskOutcomeRecorded(outcome_id=f"o-{n}", task_id="task-1", tenant_id="t1", one_id=one_id, consultant_id="c-1",
                               outcome=kind, reason=reason, recorded_at=T0 + timedelta(minutes=minute))


def task(n: int = 1, *, consultant: str | None = "c-1", store: str | None = "s-1", queue: str = "sales",
         minute: float = 5) -> TaskCreated:
    at = T0 + timedelta(minutes=minute)
    return TaskCreated(task_id=f"task-{n}", tenant_id="t1", one_id="w", consultant_id=consultant, store_id=store,
                       queue=queue, grade=Grade.A, score=70.0, reason="new_valid_lead", trigger_event_id="e",
                       due_at=at + timedelta(hours=2), created_at=at)


# ---- a touchpoint ----------------------------------------------------------------------------------


def test_first_touchpoint_creates_the_lead_with_its_first_transition():
    applied = step(None, identified("e1", EventType.WECHAT_FOLLOWED))
    lead = applied.lead
    assert (lead.version, lead.touchpoints, lead.stage) == (1, 1, Stage.FOLLOWER)
    assert [(t.from_stage, t.to_stage, t.cause) for t in applied.transitions] == [(None, Stage.FOLLOWER, "e1")]
    assert lead.first_seen_at == lead.last_seen_at == T0


def test_a_replay_changes_nothing():
    lead = lead_of("w", form("e1", name="张伟"))
    again = step(lead, form("e1", name="张伟"))
    assert again.lead is lead and not again.new and again.transitions == ()


def test_a_clean_form_with_a_mobile_is_a_valid_reachable_lead_with_cleaned_fields():
    lead = lead_of("w", form("e1", name=" 张伟😀 ", city="沪", car_model="modely", budget="25w左右"))
    assert (lead.stage, lead.verdict, lead.route, lead.reachable) == (Stage.LEAD, Verdict.VALID, Route.SALES, True)
    assert (lead.name, lead.city, lead.province, lead.product) == ("张伟", "上海", "上海", "Model Y")
    assert lead.budget_low is not None and lead.budget_low < 250_000 < lead.budget_high
    assert "意向:Model Y" in lead.tags


def test_a_form_that_cannot_be_cleaned_still_makes_a_lead_with_its_problems():
    lead = lead_of("w", form("e1", name="测试", city="火星市", car_model="飞船X9", budget="很多钱"))
    assert lead.touchpoints == 1 and lead.stage is Stage.LEAD
    assert {"name_placeholder", "unknown_city", "unknown_product", "unparseable_budget"} <= set(lead.problems)
    assert lead.name is None and lead.city is None and lead.product is None


def test_a_title_after_the_surname_is_kept_as_given():
    assert lead_of("w", form("e1", name="王先生")).name == "王先生"  # 王 is known; 先生 is how to address him


def test_a_form_without_a_phone_makes_a_contact_and_a_later_phone_a_lead():
    lead = lead_of("w", form("e1", linked=(device(),)))
    assert lead.stage is Stage.CONTACT and not lead.reachable
    lead = step(lead, form("e2", minute=5)).lead
    assert lead.stage is Stage.LEAD and lead.reachable


def test_a_test_number_alone_is_junk_and_routed_nowhere():
    lead = lead_of("w", identified("e1", EventType.FORM_SUBMITTED, linked=(device(),), attributes={"fill_seconds": 20},
                                   rejected=((IdentifierType.PHONE, "blocked_test_number"),)))
    assert (lead.verdict, lead.route) == (Verdict.JUNK, Route.NONE)
    assert "test_number" in lead.reasons and not lead.reachable


def test_a_bot_form_is_suspect_and_goes_to_verification_or_sales_by_policy():
    bot = identified("e1", EventType.FORM_SUBMITTED, linked=(phone(), device()), user_agent="python-requests/2.31",
                     attributes={"fill_seconds": 0.5})
    lead = step(None, bot).lead
    assert lead.verdict is Verdict.SUSPECT and {"bot_user_agent", "form_too_fast"} <= set(lead.reasons)
    assert lead.route is Route.VERIFICATION
    to_sales = replace(POLICY, quality=QualityPolicy(suspect_to_verification=False))
    assert step(None, bot, to_sales).lead.route is Route.SALES


def test_brushing_from_one_device_is_junk_beyond_the_threshold():
    limit = POLICY.quality.max_forms_per_device
    assert step(None, form("e1"), device_forms=limit).lead.verdict is Verdict.VALID
    brushed = step(None, form("e2"), device_forms=limit + 1).lead
    assert brushed.verdict is Verdict.JUNK and "device_velocity" in brushed.reasons
    assert step(None, form("e3"), ip_forms=POLICY.quality.max_forms_per_ip + 1).lead.verdict is Verdict.JUNK


def test_a_valid_contact_once_given_outweighs_later_junk_and_suspicion():
    lead = lead_of("w", form("e1"))
    lead = step(lead, identified("e2", EventType.FORM_SUBMITTED, minute=1, user_agent="curl/8.4.0")).lead
    assert lead.verdict is Verdict.VALID and lead.reasons == ()


def test_suspicion_sticks_until_a_valid_contact_arrives():
    lead = step(None, identified("e1", EventType.FORM_SUBMITTED, user_agent=None, linked=(device(),))).lead
    assert lead.verdict is Verdict.SUSPECT and lead.reasons == ("missing_user_agent",)
    lead = step(lead, identified("e2", EventType.PAGE_VIEWED, minute=1)).lead
    assert lead.verdict is Verdict.SUSPECT and lead.reasons == ("missing_user_agent",)
    assert step(lead, form("e3", minute=2)).lead.verdict is Verdict.VALID


def test_a_phone_reported_invalid_makes_its_next_form_junk():
    lead = step(None, form("e1"), bad_phones=frozenset({"ph-1"})).lead
    assert lead.verdict is Verdict.JUNK and "phone_marked_invalid" in lead.reasons and not lead.reachable


def test_repeat_inquiries_within_the_window_are_one_lead_asking_again():
    lead = lead_of("w", form("e1"))
    again = step(lead, form("e2", minute=60 * 24 * 3))
    assert again.repeat_inquiry and (again.lead.inquiries, again.lead.repeat_inquiries) == (1, 1)
    later = step(again.lead, form("e3", minute=60 * 24 * 60))  # two months on: a new inquiry
    assert not later.repeat_inquiry and (later.lead.inquiries, later.lead.repeat_inquiries) == (2, 1)
    assert not step(later.lead, identified("e4", minute=60 * 24 * 61)).repeat_inquiry  # a page view asks nothing


def test_a_person_owned_by_one_store_inquiring_at_another_is_a_collision_per_policy():
    owned = assign(lead_of("w", form("e1")), task(store="s-1")).lead
    assert owned.owner.consultant_id == "c-1" and owned.owner.store_id == "s-1"
    same_store = step(owned, identified("e2", EventType.PRICE_INQUIRED, minute=10, store_id="s-1")).lead
    assert same_store.collision is None
    other = identified("e3", EventType.PRICE_INQUIRED, minute=20, store_id="s-2")
    kept = step(owned, other).lead
    assert kept.collision.resolution is CollisionResolution.KEEP_OWNER and kept.owner == owned.owner
    assert (kept.collision.owner_store_id, kept.collision.store_id, kept.collision.event_id) == ("s-1", "s-2", "e3")
    reassigned = step(owned, other, replace(POLICY, collision=CollisionPolicy.REASSIGN)).lead
    assert reassigned.collision.resolution is CollisionResolution.REASSIGN and reassigned.owner is None
    asked = step(owned, other, replace(POLICY, collision=CollisionPolicy.ASK_OPS)).lead
    assert asked.collision.resolution is CollisionResolution.ASK_OPS and asked.owner == owned.owner


def test_the_first_assigned_consultant_owns_the_person():
    lead = lead_of("w", form("e1"))
    first = assign(lead, task(1, consultant="c-1")).lead
    second = assign(first, task(2, consultant="c-2", minute=30)).lead
    assert second.owner.consultant_id == "c-1"
    assert assign(lead, task(3, consultant=None)).lead.owner is None  # the unassigned queue owns nobody
    assert assign(lead, task(4, queue="verification")).lead.owner is None
    assert not assign(first, task(1)).new  # a replay


def test_referral_made_carries_the_referrer_and_credit_makes_a_customer_loyal():
    referred = lead_of("n", identified("r1", EventType.REFERRAL_MADE, one_id="n", linked=(phone(7),),
                                       attributes={"referrer_one_id": "old"}))
    assert referred.life.referrer_one_id == "old" and referred.stage is Stage.LEAD and "转介绍客户" in referred.tags
    owner = lead_of("old", identified("b1", EventType.PURCHASE_COMPLETED, one_id="old"))
    assert owner.stage is Stage.CUSTOMER
    credited = credit(owner, referred_one_id="n", event_id="r1", at=T0 + timedelta(days=1), policy=POLICY)
    assert credited.lead.stage is Stage.LOYAL and credited.lead.life.referrals == 1 and "老带新" in credited.lead.tags
    assert [t.to_stage for t in credited.transitions] == [Stage.LOYAL]
    assert not credit(credited.lead, referred_one_id="n", event_id="r1", at=T0, policy=POLICY).new


# ---- outcomes ---------------------------------------------------------------------------------------


def test_outcomes_move_the_lifecycle():
    lead = lead_of("w", form("e1"))
    lead = apply_outcome(lead, outcome(Outcome.APPOINTMENT_SET, 1), POLICY).lead
    assert lead.stage is Stage.OPPORTUNITY
    won = apply_outcome(lead, outcome(Outcome.WON, 2, minute=120), POLICY)
    assert won.lead.stage is Stage.CUSTOMER and won.lead.life.purchased_at is not None
    assert [t.cause for t in won.transitions] == ["o-2"]


def test_lost_with_a_consultants_words_gets_a_reason_code():
    lead = apply_outcome(lead_of("w", form("e1")), outcome(Outcome.LOST, reason="太贵"), POLICY).lead
    assert (lead.stage, lead.life.lost_reason, lead.life.stage_before) == (Stage.LOST, "price", Stage.LEAD)
    odd = apply_outcome(lead_of("w", form("e1")), outcome(Outcome.LOST, reason="星座不合"), POLICY)
    assert odd.lead.life.lost_reason == "other" and "lost_reason_unknown" in odd.problems


def test_invalid_number_marks_the_phone_bad_and_the_person_unreachable():
    lead = lead_of("w", form("e1"))
    applied = apply_outcome(lead, outcome(Outcome.INVALID_NUMBER), POLICY)
    assert [m.link_id for m in applied.marked_bad] == ["ph-1"]
    assert applied.lead.bad_phones == ("ph-1",) and not applied.lead.reachable
    assert applied.lead.snapshot().reachable is False


def test_an_outcome_replayed_changes_nothing():
    lead = apply_outcome(lead_of("w", form("e1")), outcome(Outcome.CONTACTED), POLICY).lead
    assert not apply_outcome(lead, outcome(Outcome.CONTACTED), POLICY).new


def test_no_answers_in_a_row_make_the_person_unreachable_and_tagged():
    lead = lead_of("w", form("e1"))
    for n in range(POLICY.lifecycle.unreachable_after_no_answers):
        lead = apply_outcome(lead, outcome(Outcome.NO_ANSWER, n, minute=60 + n), POLICY).lead
    assert lead.life.unreachable and "联系不上" in lead.tags and lead.snapshot().unreachable


# ---- the timer --------------------------------------------------------------------------------------


def test_a_lead_goes_dormant_when_its_time_comes_and_not_before():
    lead = lead_of("w", form("e1"))
    due = due_at(lead, POLICY, T0)
    assert due == T0 + POLICY.lifecycle.dormant_after[Stage.LEAD]
    assert not tick(lead, POLICY, due - timedelta(seconds=1)).new
    dormant = tick(lead, POLICY, due + timedelta(days=3))
    assert dormant.lead.stage is Stage.DORMANT and dormant.transitions[0].at == due
    assert due_at(dormant.lead, POLICY, due) is None  # dormant: nothing more to wait for
    back = step(dormant.lead, identified("e2", EventType.PAGE_VIEWED, minute=60 * 24 * 40)).lead
    assert back.stage is Stage.REACTIVATED


def test_an_old_purchase_with_service_visits_becomes_a_replacement_candidate_on_the_timer():
    bought = T0 - timedelta(days=4 * 365 - 30)  # a month short of the car cycle
    lead = lead_of("w", identified("b", EventType.PURCHASE_COMPLETED, at=bought))
    for n, months in enumerate((8, 3)):
        lead = step(lead, identified(f"s{n}", EventType.SERVICE_VISITED, at=T0 - timedelta(days=30 * months))).lead
    assert not lead.replacement_candidate and "置换候选" not in lead.tags
    due = due_at(lead, POLICY, T0)
    assert due == bought + POLICY.replacement.purchase_age
    assert not tick(lead, POLICY, due - timedelta(days=1)).lead.replacement_candidate
    ticked = tick(lead, POLICY, due + timedelta(days=1))
    assert ticked.new and ticked.lead.replacement_candidate and "置换候选" in ticked.lead.tags
    assert due_at(ticked.lead, POLICY, due + timedelta(days=1)) is None  # nothing more to wait for


def test_an_aged_purchase_without_service_visits_is_not_due_again_and_again():
    lead = lead_of("w", identified("b", EventType.PURCHASE_COMPLETED, at=T0 - timedelta(days=6 * 365)))
    assert not lead.replacement_candidate  # no service visits
    assert due_at(lead, POLICY, T0) is None  # the timer would only find the same answer every run


# ---- invariants ---------------------------------------------------------------------------------------


def test_recent_event_ids_are_bounded():
    lead = Lead(tenant_id="t1", one_id="w")
    for n in range(RECENT_EVENTS_KEPT + 5):
        lead = step(lead, identified(f"e{n}", minute=n)).lead
    assert len(lead.recent_event_ids) == RECENT_EVENTS_KEPT and lead.touchpoints == RECENT_EVENTS_KEPT + 5


def test_the_snapshot_mirrors_the_lead():
    lead = assign(lead_of("w", form("e1", name="李娜", city="杭州", budget="30万以内")), task()).lead
    snap = lead.snapshot()
    assert (snap.verdict, snap.stage, snap.name, snap.city, snap.province) == (
        lead.verdict, lead.stage, "李娜", "杭州", "浙江")
    assert snap.budget_high == lead.budget_high and snap.owner == lead.owner and snap.tags == list(lead.tags)


EVENT_TYPES = st.sampled_from(list(EventType))
REQUIRED = {EventType.CONTENT_ENGAGED: {"action": "watch"},
            EventType.CALL_LOGGED: {"direction": "inbound", "duration_s": 60, "connected": True}}


@NO_DB
@given(st.lists(st.tuples(EVENT_TYPES, st.integers(0, 60 * 24 * 400), st.booleans()), max_size=25))
def test_any_sequence_of_touchpoints_applies_without_error_and_counts_each_once(steps):
    lead = None
    for n, (kind, minute, with_phone) in enumerate(steps):
        event = identified(f"e{n}", kind, minute=minute, linked=(phone(), device()) if with_phone else (device(),),
                           attributes=REQUIRED.get(kind))
        lead = step(lead, event).lead
        assert step(lead, event).lead is lead  # replay
    if lead is not None:
        assert lead.touchpoints == len(steps) and lead.first_seen_at <= lead.last_seen_at
        assert isinstance(lead.snapshot().stage, Stage)
