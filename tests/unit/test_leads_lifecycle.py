"""Lifecycle state machine, consultant outcomes, replacement candidates and tag rules: all pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.leads import Stage
from schemas.tasks import Outcome, TaskOutcomeRecorded
from schemas.touchpoints import EventType
from services.leads.domain.outcomes import (
    LOST_REASON_MISSING,
    LOST_REASON_UNKNOWN,
    NO_PHONE_TO_MARK,
    PROGRESS,
    SPECIAL,
    MarkPhoneBad,
    map_outcome,
    map_recorded,
    normalise_reason,
)
from services.leads.domain.replacement import (
    CAR_REPLACEMENT,
    HEALTH_REPLACEMENT,
    ReplacementPolicy,
    ReplacementPolicyError,
    is_replacement_candidate,
    months_before,
)
from services.leads.domain.stages import (
    MAIN_PATH,
    RANK,
    SIDE_STATES,
    CauseType,
    LifecycleError,
    LifecyclePolicy,
    LifecycleState,
    MarkedLost,
    Merged,
    NotAnswered,
    Progressed,
    ReferralCredited,
    Tick,
    Touch,
    Transition,
    advance,
    credit_referral,
    durations,
    replay,
)
from services.leads.domain.tags import (
    CAR_TAG_RULES,
    CAR_TAG_RULES_DATA,
    HEALTH_TAG_RULES,
    ProfileFacts,
    TagRuleError,
    derive_tags,
    load_rules,
)

T0 = datetime(2025, 5, 20, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
NO_DB = settings(database=None, deadline=None)
POLICY = LifecyclePolicy()
FAR = T0 + 3650 * DAY  # a `now` after everything


def day(n: float) -> datetime:
    return T0 + n * DAY


def touch(event_type: EventType, at: datetime = T0, *, event_id: str = "e", reachable: bool = False, **kw) -> Touch:
    return Touch(event_id, event_type, at, reachable=reachable, **kw)


def at_stage(stage: Stage, *, before: Stage | None = None, reason: str | None = None, **kw) -> LifecycleState:
    """A person who entered `stage` at T0 and was last active then."""
    if stage in SIDE_STATES:
        before = before or Stage.LEAD
        reason = reason or ("price" if stage is Stage.LOST else None)
    return LifecycleState(stage=stage, stage_before=before, entered_at=T0, last_activity_at=T0, lost_reason=reason, **kw)


def step(state: LifecycleState, signal, now: datetime = FAR, policy: LifecyclePolicy = POLICY):
    return advance(state, signal, policy, now)


# ---- the transition table ------------------------------------------------------------------------

# Every event type, from a fresh person: the first stage (a reachable touchpoint, i.e. with a phone).
FIRST_STAGE = {
    EventType.PAGE_VIEWED: Stage.ANONYMOUS,
    EventType.CONTENT_ENGAGED: Stage.FOLLOWER,
    EventType.WECHAT_FOLLOWED: Stage.FOLLOWER,
    EventType.WECHAT_UNFOLLOWED: Stage.ANONYMOUS,
    EventType.WECOM_CONTACT_ADDED: Stage.LEAD,
    EventType.FORM_SUBMITTED: Stage.LEAD,
    EventType.CHAT_MESSAGE: Stage.LEAD,
    EventType.CALL_LOGGED: Stage.LEAD,
    EventType.PRICE_INQUIRED: Stage.OPPORTUNITY,
    EventType.TEST_DRIVE_BOOKED: Stage.OPPORTUNITY,
    EventType.STORE_VISITED: Stage.OPPORTUNITY,
    EventType.QUOTE_REQUESTED: Stage.OPPORTUNITY,
    EventType.DEPOSIT_PAID: Stage.CUSTOMER,
    EventType.ORDER_PLACED: Stage.CUSTOMER,
    EventType.PURCHASE_COMPLETED: Stage.CUSTOMER,
    EventType.SERVICE_VISITED: Stage.ANONYMOUS,
    EventType.REFERRAL_MADE: Stage.LEAD,
    EventType.UNSUBSCRIBED: Stage.ANONYMOUS,
    EventType.COMPLAINT_FILED: Stage.ANONYMOUS,
}


def test_the_first_stage_table_covers_every_event_type():
    assert set(FIRST_STAGE) == set(EventType)


@pytest.mark.parametrize("event_type", list(EventType))
def test_a_fresh_person_enters_their_first_stage(event_type):
    state, transition = step(LifecycleState(), touch(event_type, event_id="e1", reachable=True))
    assert state.stage is FIRST_STAGE[event_type]
    assert transition == Transition(None, FIRST_STAGE[event_type], T0, "e1", CauseType.TOUCHPOINT, str(event_type))
    assert state.entered_at == T0


MAIN_ROWS = [
    # (from, event, reachable, to or None)
    (Stage.ANONYMOUS, EventType.WECHAT_FOLLOWED, False, Stage.FOLLOWER),
    (Stage.ANONYMOUS, EventType.CONTENT_ENGAGED, False, Stage.FOLLOWER),
    (Stage.ANONYMOUS, EventType.PAGE_VIEWED, True, None),
    (Stage.FOLLOWER, EventType.WECOM_CONTACT_ADDED, False, Stage.CONTACT),
    (Stage.FOLLOWER, EventType.WECOM_CONTACT_ADDED, True, Stage.LEAD),
    (Stage.FOLLOWER, EventType.CHAT_MESSAGE, False, Stage.CONTACT),
    (Stage.FOLLOWER, EventType.FORM_SUBMITTED, False, Stage.CONTACT),  # a lead needs a phone
    (Stage.CONTACT, EventType.FORM_SUBMITTED, True, Stage.LEAD),
    (Stage.CONTACT, EventType.CALL_LOGGED, True, Stage.LEAD),
    (Stage.CONTACT, EventType.CHAT_MESSAGE, True, Stage.LEAD),
    (Stage.CONTACT, EventType.REFERRAL_MADE, True, Stage.LEAD),
    (Stage.CONTACT, EventType.CHAT_MESSAGE, False, None),
    (Stage.LEAD, EventType.PRICE_INQUIRED, False, Stage.OPPORTUNITY),
    (Stage.LEAD, EventType.TEST_DRIVE_BOOKED, False, Stage.OPPORTUNITY),
    (Stage.LEAD, EventType.STORE_VISITED, False, Stage.OPPORTUNITY),
    (Stage.LEAD, EventType.QUOTE_REQUESTED, False, Stage.OPPORTUNITY),
    (Stage.OPPORTUNITY, EventType.DEPOSIT_PAID, False, Stage.CUSTOMER),
    (Stage.OPPORTUNITY, EventType.ORDER_PLACED, False, Stage.CUSTOMER),
    (Stage.OPPORTUNITY, EventType.PURCHASE_COMPLETED, False, Stage.CUSTOMER),
    # forward only
    (Stage.OPPORTUNITY, EventType.FORM_SUBMITTED, True, None),
    (Stage.CUSTOMER, EventType.WECHAT_FOLLOWED, False, None),
    (Stage.LOYAL, EventType.DEPOSIT_PAID, False, None),
    (Stage.LEAD, EventType.SERVICE_VISITED, True, None),  # not an owner: activity only
    (Stage.LEAD, EventType.COMPLAINT_FILED, True, None),
    (Stage.LEAD, EventType.WECHAT_UNFOLLOWED, True, None),
    (Stage.CUSTOMER, EventType.UNSUBSCRIBED, True, None),
]


@pytest.mark.parametrize(("start", "event_type", "reachable", "to"), MAIN_ROWS)
def test_main_path_table(start, event_type, reachable, to):
    state, transition = step(at_stage(start), touch(event_type, day(1), event_id="e9", reachable=reachable))
    if to is None:
        assert transition is None and state.stage is start
    else:
        assert state.stage is to
        assert transition == Transition(start, to, day(1), "e9", CauseType.TOUCHPOINT, str(event_type))
        assert state.entered_at == day(1)


@NO_DB
@given(st.sampled_from(MAIN_PATH), st.sampled_from(list(EventType)), st.booleans())
def test_a_touchpoint_on_the_main_path_only_ever_moves_forward(start, event_type, reachable):
    state, transition = step(at_stage(start), touch(event_type, day(1), reachable=reachable))
    if transition is None:
        assert state.stage is start
    else:
        assert RANK[state.stage] > RANK[start] and transition.from_stage is start


def test_a_later_phone_makes_a_contact_a_lead():
    state, _ = step(at_stage(Stage.FOLLOWER), touch(EventType.WECOM_CONTACT_ADDED, day(1)))
    assert state.stage is Stage.CONTACT and not state.reachable
    state, transition = step(state, touch(EventType.CHAT_MESSAGE, day(2), reachable=True))
    assert state.stage is Stage.LEAD and state.reachable and transition.from_stage is Stage.CONTACT


def test_purchase_records_the_date_and_product_deposit_does_not():
    state, _ = step(at_stage(Stage.OPPORTUNITY), touch(EventType.DEPOSIT_PAID, day(1)))
    assert state.stage is Stage.CUSTOMER and state.purchased_at is None
    state, transition = step(state, touch(EventType.PURCHASE_COMPLETED, day(20), product="Model Y"))
    assert transition is None and state.purchased_at == day(20) and state.purchased_product == "Model Y"
    assert state.repurchases == 0


def test_a_second_purchase_is_a_repurchase_and_makes_loyal_but_not_the_same_deal_twice():
    state = at_stage(Stage.CUSTOMER, purchased_at=T0, purchased_product="Model 3", service_visits=(day(100),))
    same, transition = step(state, touch(EventType.PURCHASE_COMPLETED, day(29)))  # within 30 days: same deal
    assert transition is None and same.repurchases == 0 and same.purchased_at == T0
    state, transition = step(state, touch(EventType.PURCHASE_COMPLETED, day(400), event_id="buy2", product="Model Y"))
    assert transition == Transition(Stage.CUSTOMER, Stage.LOYAL, day(400), "buy2", CauseType.TOUCHPOINT, "purchase_completed")
    assert state.repurchases == 1 and state.purchased_at == day(400) and state.purchased_product == "Model Y"
    assert state.service_visits == ()  # visits count from the latest purchase


def test_a_late_older_purchase_does_not_replace_the_latest():
    state = at_stage(Stage.CUSTOMER, purchased_at=day(100))
    state, _ = step(state, touch(EventType.PURCHASE_COMPLETED, day(10)))
    assert state.purchased_at == day(100) and state.repurchases == 0


def test_service_visits_after_a_purchase_make_a_customer_loyal():
    state = at_stage(Stage.CUSTOMER, purchased_at=T0)
    state, transition = step(state, touch(EventType.SERVICE_VISITED, day(100)))
    assert transition is None and state.service_visits_since_purchase == 1
    state, transition = step(state, touch(EventType.SERVICE_VISITED, day(200), event_id="sv2"))
    assert state.stage is Stage.LOYAL and transition.cause == "sv2"
    assert state.service_visits == (day(100), day(200))


def test_the_number_of_service_visits_for_loyalty_is_configurable():
    policy = LifecyclePolicy(loyal_after_service_visits=1)
    state, transition = step(at_stage(Stage.CUSTOMER, purchased_at=T0), touch(EventType.SERVICE_VISITED, day(9)), policy=policy)
    assert state.stage is Stage.LOYAL and transition is not None


def test_unsubscribe_is_recorded_without_changing_stage_or_activity():
    state, transition = step(at_stage(Stage.OPPORTUNITY), touch(EventType.UNSUBSCRIBED, day(5)))
    assert transition is None and state.stage is Stage.OPPORTUNITY
    assert state.unsubscribed and state.last_activity_at == T0
    state, _ = step(state, touch(EventType.FORM_SUBMITTED, day(6), reachable=True))
    assert state.unsubscribed  # only an explicit re-subscription (not an event type yet) clears it


def test_referral_made_marks_the_referred_person():
    state, transition = step(LifecycleState(), touch(EventType.REFERRAL_MADE, reachable=True, referrer_one_id="p-ref"))
    assert state.referred and state.referrer_one_id == "p-ref" and state.stage is Stage.LEAD


# ---- side states ---------------------------------------------------------------------------------


@pytest.mark.parametrize("start", MAIN_PATH)
def test_lost_from_every_main_stage_keeps_where_they_were(start):
    state, transition = step(at_stage(start), MarkedLost("o1", "bought_elsewhere", day(3)))
    assert state.stage is Stage.LOST and state.stage_before is start and state.lost_reason == "bought_elsewhere"
    assert transition == Transition(start, Stage.LOST, day(3), "o1", CauseType.OUTCOME, "bought_elsewhere", start)


@pytest.mark.parametrize("start", [Stage.DORMANT, Stage.REACTIVATED])
def test_lost_from_a_side_state_keeps_the_main_stage(start):
    state, transition = step(at_stage(start, before=Stage.OPPORTUNITY), MarkedLost("o1", "price", day(3)))
    assert state.stage is Stage.LOST and state.stage_before is Stage.OPPORTUNITY
    assert transition.from_stage is start


@pytest.mark.parametrize("reason", ["", "   "])
def test_entering_lost_needs_a_reason(reason):
    with pytest.raises(LifecycleError, match="reason"):
        MarkedLost("o1", reason, T0)


def test_entering_lost_needs_a_reason_from_the_policy():
    with pytest.raises(LifecycleError, match="not one of"):
        step(at_stage(Stage.LEAD), MarkedLost("o1", "aliens", T0))
    policy = LifecyclePolicy(lost_reasons=("aliens", "other"))
    state, _ = step(at_stage(Stage.LEAD), MarkedLost("o1", "aliens", T0), policy=policy)
    assert state.lost_reason == "aliens"


def test_lost_again_updates_the_reason_without_a_transition():
    state, transition = step(at_stage(Stage.LOST, reason="price"), MarkedLost("o2", "no_budget", day(1)))
    assert transition is None and state.lost_reason == "no_budget" and state.entered_at == T0


@pytest.mark.parametrize("side", [Stage.LOST, Stage.DORMANT])
def test_activity_after_lost_or_dormant_reactivates_keeping_stage_before(side):
    state, transition = step(at_stage(side, before=Stage.OPPORTUNITY), touch(EventType.PAGE_VIEWED, day(2), event_id="back"))
    assert state.stage is Stage.REACTIVATED and state.stage_before is Stage.OPPORTUNITY and state.lost_reason is None
    assert transition == Transition(side, Stage.REACTIVATED, day(2), "back", CauseType.TOUCHPOINT, "page_viewed", Stage.OPPORTUNITY)


@pytest.mark.parametrize("side", [Stage.LOST, Stage.DORMANT])
@pytest.mark.parametrize("event_type", [EventType.UNSUBSCRIBED, EventType.WECHAT_UNFOLLOWED])
def test_passive_events_do_not_reactivate(side, event_type):
    state, transition = step(at_stage(side), touch(event_type, day(2)))
    assert transition is None and state.stage is side


@pytest.mark.parametrize("side", [Stage.LOST, Stage.DORMANT])
def test_activity_from_before_a_side_state_is_history_not_a_return(side):
    state = at_stage(side, before=Stage.LEAD)
    state, transition = step(state, touch(EventType.CHAT_MESSAGE, T0 - DAY, reachable=True))
    assert transition is None and state.stage is side


def test_a_lost_lead_who_pays_a_deposit_goes_straight_to_customer():
    state, transition = step(at_stage(Stage.LOST, before=Stage.LEAD), touch(EventType.DEPOSIT_PAID, day(4)))
    assert state.stage is Stage.CUSTOMER and state.stage_before is None and state.lost_reason is None
    assert transition.from_stage is Stage.LOST and transition.stage_before is Stage.LEAD


@pytest.mark.parametrize(
    ("event_type", "to"),
    [
        (EventType.PAGE_VIEWED, None),
        (EventType.CHAT_MESSAGE, None),  # lead < opportunity: still reactivated
        (EventType.STORE_VISITED, Stage.OPPORTUNITY),  # back where they were
        (EventType.ORDER_PLACED, Stage.CUSTOMER),  # or further
    ],
)
def test_from_reactivated_the_next_signal_moves_on_from_where_they_were(event_type, to):
    state = at_stage(Stage.REACTIVATED, before=Stage.OPPORTUNITY)
    state, transition = step(state, touch(event_type, day(1), reachable=True))
    if to is None:
        assert transition is None and state.stage is Stage.REACTIVATED
    else:
        assert state.stage is to and state.stage_before is None
        assert transition.from_stage is Stage.REACTIVATED and transition.stage_before is Stage.OPPORTUNITY


# ---- timer-driven dormancy -----------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "days"), [(Stage.FOLLOWER, 90), (Stage.CONTACT, 60), (Stage.LEAD, 30), (Stage.OPPORTUNITY, 21)])
def test_a_tick_finds_dormancy_after_n_days_of_the_stage(stage, days):
    state = at_stage(stage)
    same, transition = step(state, Tick(), now=T0 + days * DAY - timedelta(seconds=1))
    assert transition is None and same == state
    dormant, transition = step(state, Tick(), now=day(days + 5))
    assert dormant.stage is Stage.DORMANT and dormant.stage_before is stage
    # Dated when they went quiet, not when the timer noticed.
    assert transition == Transition(stage, Stage.DORMANT, day(days), "timer", CauseType.TIMER, f"no_activity_{days}d", stage)
    assert dormant.entered_at == day(days)


@pytest.mark.parametrize("stage", [Stage.ANONYMOUS, Stage.CUSTOMER, Stage.LOYAL, Stage.LOST, Stage.DORMANT])
def test_some_stages_never_go_dormant_by_default(stage):
    state = at_stage(stage)
    assert step(state, Tick(), now=T0 + 20 * 365 * DAY) == (state, None)


def test_tick_on_a_person_with_no_history_does_nothing():
    assert step(LifecycleState(), Tick()) == (LifecycleState(), None)


def test_activity_restarts_the_dormancy_clock():
    state, _ = step(at_stage(Stage.LEAD), touch(EventType.PAGE_VIEWED, day(20)), now=day(20))
    assert step(state, Tick(), now=day(49))[1] is None
    state, transition = step(state, Tick(), now=day(50))
    assert state.stage is Stage.DORMANT and transition.at == day(50)


def test_no_answers_and_unsubscribes_are_not_activity_for_dormancy():
    state = at_stage(Stage.LEAD)
    state, _ = step(state, NotAnswered("o1", day(25)))
    state, _ = step(state, touch(EventType.UNSUBSCRIBED, day(26)))
    state, transition = step(state, Tick(), now=day(30))
    assert state.stage is Stage.DORMANT


def test_dormancy_per_stage_is_configurable():
    policy = LifecyclePolicy.from_mapping({"dormant_after_days": {"lead": 7, "customer": 365, "opportunity": 0}})
    assert policy.dormant_after[Stage.LEAD] == 7 * DAY and policy.dormant_after[Stage.OPPORTUNITY] is None
    assert step(at_stage(Stage.LEAD), Tick(), now=day(7), policy=policy)[0].stage is Stage.DORMANT
    assert step(at_stage(Stage.CUSTOMER), Tick(), now=day(365), policy=policy)[0].stage is Stage.DORMANT
    assert step(at_stage(Stage.OPPORTUNITY), Tick(), now=day(9999), policy=policy)[1] is None


def test_dormant_then_activity_then_back_on_the_main_path():
    state = at_stage(Stage.LEAD)
    state, t1 = step(state, Tick(), now=day(31))
    assert state.stage is Stage.DORMANT
    state, t2 = step(state, Tick(), now=day(60))
    assert t2 is None  # dormant stays dormant
    state, t3 = step(state, touch(EventType.FORM_SUBMITTED, day(61), reachable=True), now=day(61))
    assert state.stage is Stage.REACTIVATED and state.stage_before is Stage.LEAD
    state, t4 = step(state, touch(EventType.CALL_LOGGED, day(62), reachable=True), now=day(62))
    assert state.stage is Stage.LEAD and t4.from_stage is Stage.REACTIVATED


def test_a_reactivated_person_goes_dormant_on_their_former_stages_clock():
    state = at_stage(Stage.REACTIVATED, before=Stage.OPPORTUNITY)
    assert step(state, Tick(), now=day(20))[1] is None
    state, transition = step(state, Tick(), now=day(21))
    assert state.stage is Stage.DORMANT and state.stage_before is Stage.OPPORTUNITY
    assert transition.from_stage is Stage.REACTIVATED


# ---- consultant outcomes -------------------------------------------------------------------------


def outcome(kind: Outcome, *, reason: str | None = None, links=(), at: datetime = T0):
    return map_outcome(kind, outcome_id="o1", one_id="p1", at=at, reason=reason, policy=POLICY, phone_link_ids=links)


def test_every_outcome_has_a_mapping():
    assert set(PROGRESS) | SPECIAL == set(Outcome) and not set(PROGRESS) & SPECIAL
    for kind in Outcome:
        outcome(kind, reason="price")  # raises for an unmapped outcome


@pytest.mark.parametrize(
    ("kind", "start", "to"),
    [
        (Outcome.CONTACTED, Stage.FOLLOWER, Stage.LEAD),
        (Outcome.CONTACTED, Stage.CONTACT, Stage.LEAD),
        (Outcome.CONTACTED, Stage.LEAD, None),  # keeps lead
        (Outcome.CONTACTED, Stage.OPPORTUNITY, None),
        (Outcome.APPOINTMENT_SET, Stage.LEAD, Stage.OPPORTUNITY),
        (Outcome.VISITED, Stage.LEAD, Stage.OPPORTUNITY),
        (Outcome.VISITED, Stage.CUSTOMER, None),
        (Outcome.ORDERED, Stage.OPPORTUNITY, Stage.CUSTOMER),
        (Outcome.WON, Stage.LEAD, Stage.CUSTOMER),
        (Outcome.CONTACTED, Stage.LOST, Stage.REACTIVATED),
        (Outcome.APPOINTMENT_SET, Stage.DORMANT, Stage.OPPORTUNITY),  # before: lead
    ],
)
def test_outcomes_move_the_lifecycle(kind, start, to):
    mapping = outcome(kind, at=day(1))
    state, transition = step(at_stage(start), mapping.signal)
    if to is None:
        assert transition is None and state.stage is start
    else:
        assert state.stage is to
        assert (transition.cause, transition.cause_type, transition.detail) == ("o1", CauseType.OUTCOME, str(kind))


def test_won_sets_purchased_at_and_ordered_does_not():
    won, _ = step(at_stage(Stage.OPPORTUNITY), outcome(Outcome.WON, at=day(2)).signal)
    ordered, _ = step(at_stage(Stage.OPPORTUNITY), outcome(Outcome.ORDERED, at=day(2)).signal)
    assert won.purchased_at == day(2) and ordered.purchased_at is None


def test_won_and_the_purchase_touchpoint_of_the_same_deal_are_one_purchase():
    state, _ = step(at_stage(Stage.OPPORTUNITY), outcome(Outcome.WON, at=day(2)).signal)
    state, transition = step(state, touch(EventType.PURCHASE_COMPLETED, day(3)))
    assert transition is None and state.repurchases == 0 and state.stage is Stage.CUSTOMER


def test_three_no_answers_in_a_row_flag_unreachable_and_contact_clears_it():
    state = at_stage(Stage.LEAD)
    for n in range(1, 4):
        mapping = outcome(Outcome.NO_ANSWER)
        state, transition = step(state, mapping.signal)
        assert transition is None and state.stage is Stage.LEAD and state.no_answer_streak == n
        assert state.unreachable is (n >= 3)
    state, _ = step(state, outcome(Outcome.CONTACTED).signal)
    assert state.no_answer_streak == 0 and not state.unreachable


def test_invalid_number_marks_the_dialled_phones_bad_and_leaves_the_lifecycle():
    mapping = outcome(Outcome.INVALID_NUMBER, links=("lk-1", "lk-2", "lk-1"))
    assert mapping.signal is None and mapping.problems == ()
    assert mapping.effects == (MarkPhoneBad("lk-1", "p1", "o1"), MarkPhoneBad("lk-2", "p1", "o1"))
    assert outcome(Outcome.INVALID_NUMBER).problems == (NO_PHONE_TO_MARK,)


@pytest.mark.parametrize(
    ("raw", "code", "problem"),
    [
        ("price", "price", None),
        ("价格", "price", None),
        (" 太贵 ", "price", None),
        ("Bought_Elsewhere", "bought_elsewhere", None),
        ("已购别家", "bought_elsewhere", None),
        ("不感兴趣", "not_interested", None),
        ("外星人绑架", "other", LOST_REASON_UNKNOWN),
        (None, "other", LOST_REASON_MISSING),
        ("  ", "other", LOST_REASON_MISSING),
    ],
)
def test_lost_reasons_are_normalised_to_the_policy(raw, code, problem):
    assert normalise_reason(raw, POLICY) == (code, problem)
    mapping = outcome(Outcome.LOST, reason=raw, at=day(1))
    assert mapping.problems == ((problem,) if problem else ())
    state, transition = step(at_stage(Stage.OPPORTUNITY), mapping.signal)
    assert state.stage is Stage.LOST and state.lost_reason == code and transition.detail == code


def test_an_alias_to_a_reason_the_policy_lacks_is_other():
    policy = LifecyclePolicy(lost_reasons=("not_interested", "other"))
    assert normalise_reason("价格", policy) == ("other", LOST_REASON_UNKNOWN)


def test_map_recorded_reads_a_tasks_outcome_record():
    record = TaskOutcomeRecorded(outcome_id="o7", task_id="t1", tenant_id="demo", one_id="p1", outcome=Outcome.LOST,
                                 reason="没预算", recorded_at=day(4))
    mapping = map_recorded(record, POLICY)
    assert mapping.signal == MarkedLost("o7", "no_budget", day(4))


# ---- referrals -----------------------------------------------------------------------------------


def test_a_customer_who_refers_becomes_loyal():
    state, transition = credit_referral(at_stage(Stage.CUSTOMER), event_id="ref-1", referred_one_id="p2", at=day(3),
                                        policy=POLICY, now=FAR)
    assert state.stage is Stage.LOYAL and state.referrals == 1
    assert transition == Transition(Stage.CUSTOMER, Stage.LOYAL, day(3), "ref-1", CauseType.REFERRAL, "referral_credited")


@pytest.mark.parametrize("stage", [Stage.LEAD, Stage.LOYAL, Stage.DORMANT])
def test_a_referral_by_a_non_customer_counts_without_moving(stage):
    state, transition = step(at_stage(stage, referrals=2), ReferralCredited("ref-1", "p2", day(3)))
    assert transition is None and state.stage is stage and state.referrals == 3


# ---- merges --------------------------------------------------------------------------------------


def test_a_merge_takes_the_further_stage():
    winner = at_stage(Stage.LEAD, referrals=1)
    loser = at_stage(Stage.OPPORTUNITY, unsubscribed=True, referrals=2)
    state, transition = step(winner, Merged("m1", loser, day(5)))
    assert state.stage is Stage.OPPORTUNITY and state.unsubscribed and state.referrals == 3
    assert transition == Transition(Stage.LEAD, Stage.OPPORTUNITY, day(5), "m1", CauseType.MERGE, "merged")


def test_a_merge_with_a_newer_lost_person_is_lost_from_the_further_stage():
    winner = at_stage(Stage.OPPORTUNITY)
    loser = LifecycleState(stage=Stage.LOST, stage_before=Stage.LEAD, entered_at=day(2), last_activity_at=day(2), lost_reason="price")
    state, transition = step(winner, Merged("m1", loser, day(5)))
    assert (state.stage, state.stage_before, state.lost_reason) == (Stage.LOST, Stage.OPPORTUNITY, "price")
    assert transition.stage_before is Stage.OPPORTUNITY


def test_a_merge_with_an_older_side_state_stays_on_the_main_path():
    winner = LifecycleState(stage=Stage.LEAD, entered_at=day(3), last_activity_at=day(3))
    loser = at_stage(Stage.DORMANT, before=Stage.CONTACT)
    state, transition = step(winner, Merged("m1", loser, day(5)))
    assert transition is None and state.stage is Stage.LEAD and state.stage_before is None


def test_merging_a_person_with_no_history_changes_no_stage_and_into_no_history_takes_theirs():
    winner = at_stage(Stage.LEAD)
    assert step(winner, Merged("m1", LifecycleState(), day(5)))[1] is None
    state, transition = step(LifecycleState(), Merged("m1", winner, day(5)))
    assert state.stage is Stage.LEAD and transition.from_stage is None


# ---- durations -----------------------------------------------------------------------------------


def test_durations_per_stage():
    transitions = [
        Transition(None, Stage.ANONYMOUS, T0, "e1", CauseType.TOUCHPOINT),
        Transition(Stage.ANONYMOUS, Stage.LEAD, day(2), "e2", CauseType.TOUCHPOINT),
        Transition(Stage.LEAD, Stage.DORMANT, day(32), "timer", CauseType.TIMER),
        Transition(Stage.DORMANT, Stage.REACTIVATED, day(40), "e3", CauseType.TOUCHPOINT),
        Transition(Stage.REACTIVATED, Stage.LEAD, day(41), "e4", CauseType.TOUCHPOINT),
    ]
    assert durations(transitions, day(45)) == {
        Stage.ANONYMOUS: 2 * DAY, Stage.LEAD: 34 * DAY, Stage.DORMANT: 8 * DAY, Stage.REACTIVATED: DAY,
    }
    assert durations([], day(1)) == {}


# ---- policy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lost_reasons": ("price",)}, "other"),
        ({"lost_reasons": ("price", "price", "other")}, "unique"),
        ({"dormant_after": {Stage.REACTIVATED: DAY}}, "reactivated"),
        ({"dormant_after": {Stage.LEAD: timedelta(0)}}, "positive"),
        ({"unreachable_after_no_answers": 0}, ">= 1"),
    ],
)
def test_bad_lifecycle_policies_are_refused(kwargs, message):
    with pytest.raises(LifecycleError, match=message):
        LifecyclePolicy(**kwargs)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dormant": {}}, "unknown lifecycle policy keys: dormant"),
        ({"dormant_after_days": {"leed": 3}}, "unknown stage 'leed'"),
        ({"dormant_after_days": {"lead": -1}}, "dormant_after_days.lead"),
        ({"dormant_after_days": {"lead": True}}, "dormant_after_days.lead"),
    ],
)
def test_bad_policy_data_is_refused_with_its_place(data, message):
    with pytest.raises(LifecycleError, match=message):
        LifecyclePolicy.from_mapping(data)


# ---- properties ----------------------------------------------------------------------------------

REASONS = st.sampled_from(POLICY.lost_reasons)


def _signal(at: datetime, other: LifecycleState):
    return st.one_of(
        st.builds(Touch, st.text("abc", min_size=1, max_size=3), st.sampled_from(list(EventType)), st.just(at),
                  st.booleans(), st.sampled_from([None, "Model Y"])),
        st.builds(Progressed, st.just("o"), st.just("x"), st.sampled_from(MAIN_PATH), st.just(at), st.booleans(), st.booleans()),
        st.builds(MarkedLost, st.just("o"), REASONS, st.just(at)),
        st.builds(NotAnswered, st.just("o"), st.just(at)),
        st.just(Tick()),
        st.just(Merged("m", other, at)),
        st.builds(ReferralCredited, st.just("r"), st.just("p2"), st.just(at)),
    )


@st.composite
def runs(draw, max_steps: int = 25):
    """A run of (signal, now): the clock moves forward; signals may be late by up to 40 days."""
    other, _ = replay(
        [Touch(f"x{i}", t, day(i)) for i, t in enumerate(draw(st.lists(st.sampled_from(list(EventType)), max_size=4)))],
        POLICY, day(10),
    )
    now = T0
    out = []
    for _ in range(draw(st.integers(0, max_steps))):
        now += timedelta(hours=draw(st.integers(0, 24 * 60)))
        at = now - timedelta(hours=draw(st.integers(0, 24 * 40)))
        out.append((draw(_signal(at, other)), now))
    return out


def _run(run):
    state = LifecycleState()
    transitions = []
    for signal, now in run:
        state, transition = advance(state, signal, POLICY, now)
        if transition:
            transitions.append(transition)
        yield state, transitions, now


@NO_DB
@given(runs())
def test_the_machine_never_leaves_the_defined_states(run):
    for state, transitions, now in _run(run):
        assert state.stage in set(Stage)
        if state.stage in RANK:
            assert state.stage_before is None
        else:
            assert state.stage in SIDE_STATES and state.stage_before in RANK
        assert (state.lost_reason is not None) is (state.stage is Stage.LOST)
        assert state.lost_reason is None or state.lost_reason in POLICY.lost_reasons
        assert state.unreachable is (state.no_answer_streak >= POLICY.unreachable_after_no_answers)


@NO_DB
@given(runs())
def test_transitions_chain_and_move_time_forward(run):
    for state, transitions, now in _run(run):
        if not transitions:
            continue
        assert transitions[0].from_stage is None
        for previous, current in zip(transitions, transitions[1:]):
            assert current.from_stage is previous.to_stage
            assert current.from_stage is not current.to_stage
            assert previous.at <= current.at
            if current.from_stage in RANK and current.to_stage in RANK:
                assert RANK[current.to_stage] > RANK[current.from_stage]  # the main path is forward only
        assert transitions[-1].to_stage is state.stage and transitions[-1].at == state.entered_at
        assert transitions[-1].at <= now


@NO_DB
@given(runs())
def test_durations_sum_to_the_time_since_the_first_stage(run):
    steps = list(_run(run))
    if not steps or not steps[-1][1]:
        return
    _, transitions, now = steps[-1]
    spent = durations(transitions, now)
    assert sum(spent.values(), timedelta(0)) == now - transitions[0].at
    assert all(d >= timedelta(0) for d in spent.values())
    assert set(spent) == {t.to_stage for t in transitions}


# ---- replacement candidates ----------------------------------------------------------------------

FOUR_YEARS = CAR_REPLACEMENT.purchase_age
NOW = datetime(2030, 6, 15, 9, 0, tzinfo=timezone.utc)


def owner(purchased_at: datetime, visits=(), stage: Stage = Stage.CUSTOMER, **kw) -> LifecycleState:
    before = Stage.CUSTOMER if stage in SIDE_STATES else None
    reason = "price" if stage is Stage.LOST else None
    return LifecycleState(stage=stage, stage_before=before, lost_reason=reason, entered_at=purchased_at,
                          purchased_at=purchased_at, service_visits=tuple(visits), **kw)


TWO_RECENT = (NOW - 30 * DAY, NOW - 200 * DAY)


def test_an_old_car_with_regular_service_is_a_replacement_candidate():
    verdict = is_replacement_candidate(owner(NOW - FOUR_YEARS, TWO_RECENT), CAR_REPLACEMENT, NOW)
    assert verdict and verdict.reason == "candidate" and verdict.recent_service_visits == 2


def test_purchase_age_edge():
    one_second = timedelta(seconds=1)
    assert is_replacement_candidate(owner(NOW - FOUR_YEARS, TWO_RECENT), CAR_REPLACEMENT, NOW)
    verdict = is_replacement_candidate(owner(NOW - FOUR_YEARS + one_second, TWO_RECENT), CAR_REPLACEMENT, NOW)
    assert not verdict and verdict.reason == "purchase_too_recent"


def test_service_visit_count_and_window_edges():
    window_start = datetime(2029, 6, 15, 9, 0, tzinfo=timezone.utc)  # 12 calendar months before NOW
    bought = NOW - 5 * 365 * DAY
    assert is_replacement_candidate(owner(bought, (window_start, NOW)), CAR_REPLACEMENT, NOW)
    outside = window_start - timedelta(seconds=1)
    verdict = is_replacement_candidate(owner(bought, (outside, NOW)), CAR_REPLACEMENT, NOW)
    assert not verdict and verdict.reason == "too_few_service_visits" and verdict.recent_service_visits == 1
    future = NOW + DAY  # a visit after `now` has not happened yet
    assert not is_replacement_candidate(owner(bought, (NOW - DAY, future)), CAR_REPLACEMENT, NOW)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (LifecycleState(stage=Stage.OPPORTUNITY, entered_at=T0), "not_an_owner"),
        (LifecycleState(stage=Stage.CUSTOMER, entered_at=T0), "not_an_owner"),  # deposit only: no purchase date
        (owner(T0, TWO_RECENT, stage=Stage.LOST), "lost"),
        (owner(T0, TWO_RECENT, unsubscribed=True), "unsubscribed"),
    ],
)
def test_who_is_never_a_replacement_candidate(state, reason):
    verdict = is_replacement_candidate(state, CAR_REPLACEMENT, NOW)
    assert not verdict and verdict.reason == reason


def test_loyal_and_dormant_owners_can_be_candidates():
    assert is_replacement_candidate(owner(T0, TWO_RECENT, stage=Stage.LOYAL), CAR_REPLACEMENT, NOW)
    assert is_replacement_candidate(owner(T0, TWO_RECENT, stage=Stage.DORMANT), CAR_REPLACEMENT, NOW)


def test_health_products_use_their_usage_cycle():
    bought = NOW - 30 * DAY
    assert is_replacement_candidate(owner(bought, purchased_product="益生菌"), HEALTH_REPLACEMENT, NOW)
    assert not is_replacement_candidate(owner(bought + DAY, purchased_product="益生菌"), HEALTH_REPLACEMENT, NOW)
    verdict = is_replacement_candidate(owner(bought, purchased_product="鱼油"), HEALTH_REPLACEMENT, NOW)
    assert not verdict and verdict.cycle == 60 * DAY
    unknown = is_replacement_candidate(owner(NOW - 90 * DAY, purchased_product="神药"), HEALTH_REPLACEMENT, NOW)
    assert unknown and unknown.cycle == 90 * DAY


def test_replacement_thresholds_are_configurable():
    policy = ReplacementPolicy(purchase_age=365 * DAY, min_service_visits=3, service_window_months=6)
    visits = (NOW - 10 * DAY, NOW - 20 * DAY, NOW - 150 * DAY)
    assert is_replacement_candidate(owner(NOW - 400 * DAY, visits), policy, NOW)
    assert not is_replacement_candidate(owner(NOW - 400 * DAY, visits[:2]), policy, NOW)


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2030, 3, 31, tzinfo=timezone.utc), 1, datetime(2030, 2, 28, tzinfo=timezone.utc)),
        (datetime(2028, 3, 31, tzinfo=timezone.utc), 1, datetime(2028, 2, 29, tzinfo=timezone.utc)),
        (datetime(2030, 1, 15, tzinfo=timezone.utc), 12, datetime(2029, 1, 15, tzinfo=timezone.utc)),
        (datetime(2030, 1, 15, tzinfo=timezone.utc), 1, datetime(2029, 12, 15, tzinfo=timezone.utc)),
    ],
)
def test_months_before(moment, months, expected):
    assert months_before(moment, months) == expected


@pytest.mark.parametrize(
    "kwargs",
    [{"purchase_age": timedelta(0)}, {"cycle_days_by_product": {"鱼油": 0}}, {"min_service_visits": -1},
     {"service_window_months": 0}],
)
def test_bad_replacement_policies_are_refused(kwargs):
    with pytest.raises(ReplacementPolicyError):
        ReplacementPolicy(**kwargs)


def test_a_replacement_candidate_comes_out_of_the_machine():
    state, _ = replay(
        [
            Touch("e1", EventType.FORM_SUBMITTED, T0, reachable=True),
            Touch("e2", EventType.PURCHASE_COMPLETED, day(10), product="Model 3"),
            *[Touch(f"s{i}", EventType.SERVICE_VISITED, day(10 + 180 * i)) for i in range(1, 10)],
        ],
        POLICY, day(1700),
    )
    assert state.stage is Stage.LOYAL and state.purchased_at == day(10)
    assert is_replacement_candidate(state, CAR_REPLACEMENT, day(10) + FOUR_YEARS + 30 * DAY)


# ---- tags ----------------------------------------------------------------------------------------


def facts(**kw) -> ProfileFacts:
    return ProfileFacts(**kw)


def test_default_car_tags():
    tags = derive_tags(
        facts(event_counts={"price_inquired": 2, "test_drive_booked": 1}, channel_counts={"douyin": 4, "wechat": 2},
              attributes={"product": "Model Y"}, budget_low=200_000, budget_high=300_000, referred=True),
        CAR_TAG_RULES,
    )
    assert tags == tuple(sorted(("价格敏感", "偏好渠道:douyin", "意向:Model Y", "老客推荐", "预算:20-30万", "已试驾", "高意向")))


def test_no_facts_no_tags():
    assert derive_tags(facts(), CAR_TAG_RULES) == ()
    assert derive_tags(facts(), HEALTH_TAG_RULES) == ()


def test_event_count_threshold_edge():
    rules = load_rules([{"tag": "价格敏感", "when": {"event_count": {"price_inquired": {">=": 2}}}}])
    assert derive_tags(facts(event_counts={"price_inquired": 1}), rules) == ()
    assert derive_tags(facts(event_counts={"price_inquired": 2}), rules) == ("价格敏感",)


@pytest.mark.parametrize(
    ("low", "high", "tag"),
    [
        (200_000, 300_000, "预算:20-30万"),
        (200_000, 200_000, "预算:20-30万"),  # an edge belongs to the band above it
        (150_000, None, "预算:15-20万"),
        (1_500_000, 3_000_000, "预算:100万以上"),
        (0, 50_000, "预算:0-10万"),
        (None, None, None),
    ],
)
def test_budget_bands(low, high, tag):
    tags = derive_tags(facts(budget_low=low, budget_high=high), CAR_TAG_RULES)
    assert [t for t in tags if t.startswith("预算:")] == ([tag] if tag else [])


def test_budget_below_the_first_edge_and_other_units():
    rules = load_rules([{"tag": "预算:{value}", "when": {"budget_band": {"edges": [5_000, 10_000], "unit": "k"}}}])
    assert derive_tags(facts(budget_low=1_000, budget_high=2_000), rules) == ("预算:5k以下",)
    health = derive_tags(facts(budget_low=800, budget_high=1_500), HEALTH_TAG_RULES)
    assert health == ("预算:1000-3000元",)


def test_preferred_channel_is_the_one_with_most_touchpoints_ties_by_name():
    rules = load_rules([{"tag": "偏好渠道:{value}", "when": {"top_channel": {}}}])
    assert derive_tags(facts(channel_counts={"web": 3, "wechat": 5, "douyin": 1}), rules) == ("偏好渠道:wechat",)
    assert derive_tags(facts(channel_counts={"wechat": 2, "douyin": 2}), rules) == ("偏好渠道:douyin",)
    assert derive_tags(facts(channel_counts={"wechat": 1}), CAR_TAG_RULES) == ()  # the default wants at least 2


def test_attribute_conditions_and_combinators():
    rules = load_rules([
        {"tag": "一线城市:{value}", "when": {"attribute": {"name": "city", "in": ["上海", "北京"]}}},
        {"tag": "沉默", "when": {"not": {"event_count": {"chat_message": {">": 0}}}}},
        {"tag": "车主:{value}", "when": {"all": [{"stage": ["customer", "loyal"]}, {"attribute": "product"}]}},
        {"tag": "来源:{value}", "when": {"any": [{"flag": "referred"}, {"attribute": "source"}]}},
    ])
    assert derive_tags(facts(attributes={"city": "上海", "product": "Model 3"}, stage=Stage.LOYAL), rules) == (
        "一线城市:上海", "沉默", "车主:Model 3")
    assert derive_tags(facts(attributes={"city": "杭州", "product": "Model 3"}, stage=Stage.LEAD,
                             event_counts={"chat_message": 1}), rules) == ()
    # `any` held by a condition without a value: a {value} tag has nothing to show
    assert derive_tags(facts(referred=True), rules) == ("沉默",)
    assert derive_tags(facts(attributes={"source": "车展"}), rules) == ("来源:车展", "沉默")


def test_tags_are_deterministic_sorted_and_unique():
    rules = CAR_TAG_RULES_DATA + CAR_TAG_RULES_DATA  # duplicates and raw data
    f = facts(event_counts={"store_visited": 1, "price_inquired": 3}, attributes={"product": "汉"}, referred=True)
    first = derive_tags(f, rules)
    assert first == tuple(sorted(set(first))) == derive_tags(f, list(reversed(rules)))
    assert first.count("老客推荐") == 1


def test_tags_from_a_lifecycle_state():
    state = LifecycleState(stage=Stage.LOYAL, referred=True, repurchases=1, referrals=2, unsubscribed=True,
                           service_visits=(T0, day(1)))
    tags = derive_tags(ProfileFacts.of(state, attributes={"product": "Model Y"}), CAR_TAG_RULES)
    assert set(tags) == {"老客推荐", "复购客户", "推荐达人", "已退订", "意向:Model Y", "售后常客"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tag": "x", "when": {}}, "rules"),  # not a list
        ([{"tag": "x"}], r"rules\[0\]: expected exactly the keys"),
        ([{"tag": "x", "when": {"flag": "referred"}, "colour": "red"}], r"rules\[0\]: expected exactly the keys"),
        ([{"tag": " ", "when": {"flag": "referred"}}], r"rules\[0\]\.tag: expected a non-empty text"),
        ([{"tag": "a:{name}", "when": {"attribute": "name"}}], r"only placeholder is \{value\}"),
        ([{"tag": "a:{value}", "when": {"flag": "referred"}}], r"\{value\} needs a condition that gives a value"),
        ([{"tag": "x", "when": {"colour": "red"}}], r"rules\[0\]\.when: unknown condition 'colour'"),
        ([{"tag": "x", "when": {"flag": "referred", "stage": ["lead"]}}], "one condition per mapping"),
        ([{"tag": "x", "when": {"event_count": {"price_asked": {">=": 2}}}}], "unknown event type 'price_asked'"),
        ([{"tag": "x", "when": {"event_count": {"price_inquired": {"=>": 2}}}}],
         r"when\.event_count\.price_inquired: unknown operator '=>'"),
        ([{"tag": "x", "when": {"event_count": {"price_inquired": {">=": "2"}}}}], r"price_inquired\.>=: expected a whole number"),
        ([{"tag": "x", "when": {"event_count": {"price_inquired": {">=": True}}}}], "expected a whole number"),
        ([{"tag": "x", "when": {"event_count": {"price_inquired": 2}}}], "expected a non-empty mapping"),
        ([{"tag": "x", "when": {"fact": {"children": {">=": 1}}}}], "unknown fact 'children'"),
        ([{"tag": "x", "when": {"flag": "vip"}}], "unknown flag 'vip'"),
        ([{"tag": "x", "when": {"stage": ["lead", "won"]}}], "unknown stage"),
        ([{"tag": "x", "when": {"stage": "lead"}}], "non-empty list of stages"),
        ([{"tag": "x:{value}", "when": {"budget_band": {"edges": [10, 10]}}}], "must rise strictly"),
        ([{"tag": "x:{value}", "when": {"budget_band": {"edges": [10]}}}], "at least two"),
        ([{"tag": "x:{value}", "when": {"budget_band": {"edges": [0, 10], "unit": "亿"}}}], r"budget_band\.unit"),
        ([{"tag": "x:{value}", "when": {"top_channel": {"min": 0}}}], r"top_channel\.min"),
        ([{"tag": "x", "when": {"all": []}}], "non-empty list of conditions"),
        ([{"tag": "x", "when": {"any": [{"flag": "referred"}, {"flag": "vip"}]}}], r"when\.any\[1\]\.flag: unknown flag"),
        ([{"tag": "x:{value}", "when": {"attribute": {"name": "city", "in": "上海"}}}], r"attribute\.in"),
        (["价格敏感"], r"rules\[0\]: expected a mapping"),
    ],
)
def test_invalid_rules_are_refused_with_their_place(data, message):
    with pytest.raises(TagRuleError, match=message):
        load_rules(data)


def test_derive_tags_checks_raw_rules_too():
    with pytest.raises(TagRuleError, match="unknown flag"):
        derive_tags(facts(), [{"tag": "x", "when": {"flag": "vip"}}])


def test_time_in_stages_of_stored_history():
    from datetime import UTC, datetime, timedelta

    from services.leads.domain.stages import time_in_stages

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    history = [{"to": "lead", "at": t0}, {"to": "opportunity", "at": t0 + timedelta(days=2)},
               {"to": "lead", "at": t0 + timedelta(days=3)}]  # (a rebuild may revisit a stage)
    got = time_in_stages(history, t0 + timedelta(days=10))
    assert got == {Stage.LEAD: timedelta(days=9), Stage.OPPORTUNITY: timedelta(days=1)}
