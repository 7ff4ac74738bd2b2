"""Scoring domain, pure: decay, repetition and caps, going quiet, fit, the verdict and the lifecycle,
grades, the explanation in words, the emission threshold, and the learned model's share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.leads import LeadSnapshot, Stage, Verdict
from schemas.scores import Grade
from schemas.tasks import Outcome
from schemas.touchpoints import EventType
from services.scoring.domain.explain import points_text
from services.scoring.domain.learning import Model
from services.scoring.domain.rules import REPEAT_INQUIRY, RuleSet, SignalRule, builtin, outcome_kind
from services.scoring.domain.score import (
    INACTIVITY,
    MODEL,
    SIGNALS_KEPT,
    Scored,
    Signal,
    add_signal,
    decay,
    grade_of,
    repeats,
    score,
    worth_emitting,
)

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=timezone.utc)
NO_DB = settings(database=None)  # no .hypothesis/ example database on disk: these are pure tests
CAR = builtin("car_dealer")
# The car rules without repeat inquiries (inquiries at one instant would count as repeats): one rule at a time.
ALONE = CAR.model_copy(update={"repeat_inquiry": None})
# ... and without going quiet, and with every repetition counting fully.
PLAIN = ALONE.model_copy(update={"inactivity": None, "signals": {
    k: v.model_copy(update={"repeat_factor": 1.0}) for k, v in CAR.signals.items()}})


def lead(verdict: Verdict = Verdict.VALID, stage: Stage = Stage.LEAD, **fields) -> LeadSnapshot:
    return LeadSnapshot(verdict=verdict, stage=stage, reachable=True, touchpoints=1, first_seen_at=NOW,
                        last_seen_at=NOW, **fields)


def signals(*specs: tuple[str, float]) -> tuple[Signal, ...]:
    """(kind, age in days) pairs -> signals, each with its own event id."""
    return tuple(Signal(f"e-{n}", str(kind), NOW - timedelta(days=age)) for n, (kind, age) in enumerate(specs))


def points(result: Scored) -> dict[str, float]:
    return {c.signal: c.points for c in result.contributions}


# ---- decay -----------------------------------------------------------------------------------------


def test_decay_halves_at_one_half_life():
    assert (decay(7, 7), decay(14, 7), decay(0, 7)) == (0.5, 0.25, 1.0)


def test_decay_of_future_signals_is_not_amplified():
    assert decay(-3, 7) == 1.0


@NO_DB
@given(st.floats(0, 3650), st.floats(0, 3650), st.floats(0.5, 120))
def test_decay_is_monotonic_and_within_unit_interval(a, b, half_life):
    young, old = sorted((a, b))
    assert 0.0 <= decay(old, half_life) <= decay(young, half_life) <= 1.0


def test_a_form_at_one_half_life_counts_half():
    assert score(signals((EventType.FORM_SUBMITTED, 14)), lead(), PLAIN, NOW).score == 15.0


# ---- points, repetition, caps, clamping ------------------------------------------------------------


def test_a_fresh_form_alone_scores_30_grade_b():
    result = score(signals((EventType.FORM_SUBMITTED, 0)), lead(), CAR, NOW)
    assert (result.score, result.grade, points(result)) == (30.0, Grade.B, {"form_submitted": 30.0})


def test_no_signals_scores_zero_grade_c_with_no_lines():
    result = score((), lead(), CAR, NOW)
    assert (result.score, result.grade, result.contributions) == (0.0, Grade.C, ())


def test_repetitions_have_diminishing_returns():
    # price_inquired: 12 points, each older repetition worth 0.8 of the one before.
    result = score(signals(*[(EventType.PRICE_INQUIRED, 0)] * 3), lead(), ALONE, NOW)
    assert points(result)["price_inquired"] == round(12 * (1 + 0.8 + 0.64), 1) == 29.3
    assert result.contributions[0].count == 3


def test_the_newest_occurrence_counts_fully_and_older_ones_decay_and_diminish():
    result = score(signals((EventType.TEST_DRIVE_BOOKED, 10), (EventType.TEST_DRIVE_BOOKED, 0)), lead(), ALONE, NOW)
    assert points(result)["test_drive_booked"] == round(25 + 25 * 0.5 * 0.5, 1) == 31.2


def test_repetition_is_capped():
    result = score(signals(*[(EventType.PRICE_INQUIRED, 0)] * 10), lead(), ALONE, NOW)
    assert points(result) == {"price_inquired": 30.0} and result.score == 30.0


def test_negative_signals_lower_the_score_and_are_capped_too():
    positive = signals((EventType.FORM_SUBMITTED, 0), (EventType.TEST_DRIVE_BOOKED, 0))
    assert score(positive, lead(), ALONE, NOW).score == 55.0
    complaints = positive + tuple(Signal(f"c-{n}", EventType.COMPLAINT_FILED, NOW) for n in range(5))
    result = score(complaints, lead(), ALONE, NOW)
    assert points(result)["complaint_filed"] == -30.0 and result.score == 25.0


def test_score_is_clamped_at_zero_and_at_100():
    assert score(signals((EventType.UNSUBSCRIBED, 0), (EventType.PAGE_VIEWED, 0)), lead(), ALONE, NOW).score == 0.0
    many = signals((EventType.FORM_SUBMITTED, 0), (EventType.STORE_VISITED, 0), (EventType.TEST_DRIVE_BOOKED, 0),
                   (EventType.QUOTE_REQUESTED, 0), (EventType.DEPOSIT_PAID, 0))
    result = score(many, lead(), ALONE, NOW)
    assert (result.score, result.grade) == (100.0, Grade.H)


def test_signals_without_a_rule_contribute_nothing():
    assert score(signals((EventType.ORDER_PLACED, 0)), lead(), CAR, NOW).contributions == ()


def test_outcomes_are_signals_with_their_own_rules():
    result = score(signals((outcome_kind(Outcome.APPOINTMENT_SET), 0), (outcome_kind(Outcome.NO_ANSWER), 0)), lead(), CAR, NOW)
    assert points(result) == {"outcome:appointment_set": 20.0, "outcome:no_answer": -4.0}


def test_an_inquiry_within_the_window_of_the_one_before_is_a_repeat_inquiry():
    asked = signals((EventType.FORM_SUBMITTED, 40), (EventType.PRICE_INQUIRED, 5), (EventType.PAGE_VIEWED, 1),
                    (EventType.QUOTE_REQUESTED, 0))
    assert [s.event_id for s in repeats(asked, CAR)] == ["e-3"]  # the price inquiry came 35 days after the form
    result = score(asked, lead(), CAR, NOW)
    assert points(result)[REPEAT_INQUIRY] == 8.0 and result.contributions[-1].signal != REPEAT_INQUIRY


@NO_DB
@given(st.permutations(range(6)))
def test_repeat_inquiries_do_not_depend_on_the_order_signals_arrived_in(order):
    asked = signals(*[(EventType.PRICE_INQUIRED, d) for d in (0, 3, 50, 52, 120, 200)])
    shuffled = tuple(asked[i] for i in order)
    assert repeats(shuffled, CAR) == repeats(asked, CAR)


def test_an_invalid_number_sinks_the_score():
    result = score(signals((EventType.FORM_SUBMITTED, 0), (EventType.TEST_DRIVE_BOOKED, 0),
                           (outcome_kind(Outcome.INVALID_NUMBER), 0)), lead(), ALONE, NOW)
    assert result.score == 0.0 and result.grade is Grade.C


_kinds = st.sampled_from([*map(str, EventType), *(outcome_kind(o) for o in Outcome)])


@NO_DB
@given(st.lists(st.tuples(_kinds, st.floats(-2, 400)), max_size=40), st.sampled_from(list(Verdict)),
       st.sampled_from(list(Stage)), st.sampled_from(["car_dealer", "health"]))
def test_score_within_0_and_100_and_every_line_within_its_cap(specs, verdict, stage, name):
    rules = builtin(name)
    result = score(signals(*specs), lead(verdict, stage), rules, NOW)
    assert 0.0 <= result.score <= 100.0
    for c in result.contributions:
        rule = rules.rule_for(c.signal)
        if rule is not None:
            assert abs(c.points) <= abs(rule.cap)


@NO_DB
@given(st.lists(st.tuples(_kinds, st.floats(0, 120)), max_size=25), st.sampled_from([Verdict.VALID, Verdict.SUSPECT]))
def test_the_lines_add_up_to_the_score_when_it_is_not_clamped(specs, verdict):
    result = score(signals(*specs), lead(verdict), CAR, NOW)
    total = sum(c.points for c in result.contributions)
    if 0 < total < 100:
        assert abs(total - result.score) <= 0.05 * (len(result.contributions) + 1)


# ---- going quiet -----------------------------------------------------------------------------------


def test_going_quiet_costs_points_in_steps_down_to_the_cap():
    quiet = CAR.inactivity
    assert quiet is not None and (quiet.after_days, quiet.every_days, quiet.points, quiet.cap) == (7, 14, -10, -30)
    form = signals((EventType.FORM_SUBMITTED, 0))
    for days, expected in ((6.9, None), (7, -10.0), (20.9, -10.0), (21, -20.0), (35, -30.0), (400, -30.0)):
        result = score(form, lead(), CAR, NOW + timedelta(days=days))
        assert points(result).get(INACTIVITY) == expected, days


def test_a_lead_that_went_quiet_is_not_h_a_month_later():
    history = signals((EventType.FORM_SUBMITTED, 0), (EventType.TEST_DRIVE_BOOKED, 0), (EventType.STORE_VISITED, 0))
    fresh = score(history, lead(), CAR, NOW)
    month = score(history, lead(), CAR, NOW + timedelta(days=30))
    assert fresh.grade is Grade.H and month.grade is Grade.C
    assert worth_emitting(fresh, month, CAR)


# ---- fit -------------------------------------------------------------------------------------------


def test_a_city_outside_the_served_ones_costs_points_and_one_inside_earns_some():
    rules = CAR.model_copy(update={"fit": CAR.fit.model_copy(update={"cities": ["上海市", "苏州市"]})})
    form = signals((EventType.FORM_SUBMITTED, 0))
    assert points(score(form, lead(city="上海市"), rules, NOW))["fit:city"] == 5.0
    assert points(score(form, lead(city="成都市"), rules, NOW))["fit:city"] == -15.0
    assert "fit:city" not in points(score(form, lead(), rules, NOW))  # unknown city: no opinion
    assert "fit:city" not in points(score(form, lead(city="成都市"), CAR, NOW))  # no list: every city served


@pytest.mark.parametrize("low, high, expected", [
    (250_000, 300_000, 8.0),  # covers the Model Y's 263,900
    (200_000, 230_000, 8.0),  # within the 15% tolerance
    (150_000, 200_000, -10.0),  # short
    (400_000, None, 8.0),  # "40万以上": no upper bound
])
def test_a_budget_matching_the_product_earns_points(low, high, expected):
    result = score(signals((EventType.FORM_SUBMITTED, 0)), lead(product="Model Y", budget_low=low, budget_high=high), CAR, NOW)
    assert points(result)["fit:budget"] == expected


def test_no_budget_or_an_unpriced_product_has_no_budget_line():
    assert "fit:budget" not in points(score(signals((EventType.FORM_SUBMITTED, 0)), lead(product="Model Y"), CAR, NOW))
    assert "fit:budget" not in points(score(signals((EventType.FORM_SUBMITTED, 0)),
                                            lead(product="火星车", budget_low=1, budget_high=2), CAR, NOW))


# ---- verdict and stage -----------------------------------------------------------------------------


def test_junk_scores_zero_and_says_why():
    result = score(signals((EventType.FORM_SUBMITTED, 0), (EventType.STORE_VISITED, 0)), lead(Verdict.JUNK), ALONE, NOW)
    assert result.score == 0.0 and result.grade is Grade.C
    assert points(result) == {"form_submitted": 30.0, "store_visited": 25.0, "quality:junk": -55.0}


def test_a_suspect_lead_counts_half_and_says_so():
    result = score(signals((EventType.FORM_SUBMITTED, 0), (EventType.TEST_DRIVE_BOOKED, 0)), lead(Verdict.SUSPECT), ALONE, NOW)
    assert (result.score, result.grade) == (27.5, Grade.B)
    assert points(result)["quality:suspect"] == -27.5


@pytest.mark.parametrize("stage", [Stage.CUSTOMER, Stage.LOYAL])
def test_customers_are_grade_o_whatever_the_score(stage):
    assert score((), lead(stage=stage), CAR, NOW).grade is Grade.O


def test_lost_is_grade_f():
    assert score(signals((EventType.FORM_SUBMITTED, 0)), lead(stage=Stage.LOST), CAR, NOW).grade is Grade.F


@pytest.mark.parametrize("value, grade", [(100, Grade.H), (75, Grade.H), (74.9, Grade.A), (50, Grade.A),
                                          (49.9, Grade.B), (25, Grade.B), (24.9, Grade.C), (0, Grade.C)])
def test_car_grade_thresholds(value, grade):
    assert grade_of(value, Stage.LEAD, CAR) is grade


def test_thresholds_are_the_tenants():
    health = builtin("health")
    assert grade_of(70, Stage.LEAD, health) is Grade.H and grade_of(70, Stage.LEAD, CAR) is Grade.A


# ---- explanation -----------------------------------------------------------------------------------


def test_the_explanation_reads_like_a_consultant_talks():
    result = score(signals((EventType.TEST_DRIVE_BOOKED, 2), *[(EventType.PRICE_INQUIRED, 3)] * 3), lead(), PLAIN, NOW)
    by_signal = {c.signal: c for c in result.contributions}
    drive = round(25 * 0.5 ** (2 / 10), 1)
    assert by_signal["test_drive_booked"].text == f"试驾预约 2 天前 +{drive}"
    assert by_signal["test_drive_booked"].text_en == f"test drive booked 2 days ago +{drive}"
    assert by_signal["price_inquired"].text == f"价格咨询 ×3 +{round(3 * 12 * 0.5 ** (3 / 7), 1)}"
    assert by_signal["test_drive_booked"].last_at == NOW - timedelta(days=2)


def test_going_quiet_reads_as_days_without_interaction():
    result = score(signals((EventType.FORM_SUBMITTED, 0)), lead(), CAR, NOW + timedelta(days=7))
    line = next(c for c in result.contributions if c.signal == INACTIVITY)
    assert (line.text, line.text_en) == ("7 天无互动 −10", "no interaction for 7 days −10")


def test_lines_are_sorted_by_weight_biggest_first():
    result = score(signals((EventType.PAGE_VIEWED, 0), (EventType.COMPLAINT_FILED, 0), (EventType.TEST_DRIVE_BOOKED, 0),
                           (EventType.UNSUBSCRIBED, 0)), lead(), CAR, NOW)
    assert [c.label for c in result.contributions] == ["退订", "试驾预约", "投诉", "浏览车型页"]


@pytest.mark.parametrize("value, text", [(25, "+25"), (-10, "−10"), (10.9, "+10.9"), (0, "+0"), (-0.5, "−0.5")])
def test_points_in_words(value, text):
    assert points_text(value) == text


def test_custom_rules_are_used():
    rules = RuleSet(name="t", signals={EventType.PAGE_VIEWED: SignalRule(label="看", weight=60, half_life_days=1, cap=60)},
                    inactivity=None)
    result = score(signals((EventType.PAGE_VIEWED, 0), (EventType.FORM_SUBMITTED, 0)), lead(), rules, NOW)
    assert (result.score, result.grade, points(result)) == (60.0, Grade.A, {"page_viewed": 60.0})


# ---- the learned model's share ---------------------------------------------------------------------


def _model(n: int, bias: float) -> Model:
    return Model(bias=bias, n=n, version=n)


def test_before_enough_outcomes_the_model_is_reported_but_not_blended():
    form = signals((EventType.FORM_SUBMITTED, 0))
    result = score(form, lead(), CAR, NOW, _model(CAR.learning.min_outcomes - 1, 2.0))
    assert result.score == result.rule_score == 30.0 and result.blend_weight == 0.0
    assert result.probability == pytest.approx(0.8808, abs=1e-4) and result.model_version == 49


def test_with_enough_outcomes_the_model_is_blended_in_as_a_line_of_its_own():
    form = signals((EventType.FORM_SUBMITTED, 0))
    result = score(form, lead(), CAR, NOW, _model(200, 2.0))  # p = 0.881, weight = 0.5 * 200 / 400
    assert result.blend_weight == 0.25
    assert result.score == round(0.75 * 30 + 0.25 * 88.08, 1) == 44.5
    assert points(result)[MODEL] == round(44.5 - 30.0, 1)


def test_shadow_mode_learns_but_the_grade_stays_on_the_rules():
    shadow = CAR.model_copy(update={"learning": CAR.learning.model_copy(update={"mode": "shadow"})})
    result = score(signals((EventType.FORM_SUBMITTED, 0)), lead(), shadow, NOW, _model(500, 3.0))
    assert result.score == 30.0 and result.blend_weight == 0.0 and result.probability > 0.9
    assert MODEL not in points(result)


def test_a_junk_lead_stays_at_zero_whatever_the_model_thinks():
    result = score(signals((EventType.FORM_SUBMITTED, 0)), lead(Verdict.JUNK), CAR, NOW, _model(1000, 5.0))
    assert result.score == 0.0


def test_features_are_the_rule_lines_scaled():
    result = score(signals((EventType.PRICE_INQUIRED, 0)), lead(Verdict.SUSPECT), CAR, NOW)
    x = dict(result.features)
    assert x["price_inquired"] == pytest.approx(12 / 30) and x["verdict:suspect"] == 1.0
    assert x["test_drive_booked"] == 0.0 and set(CAR.kinds()) <= set(x)


# ---- signals window and emission -------------------------------------------------------------------


def test_add_signal_keeps_the_latest():
    kept: tuple[Signal, ...] = ()
    for n in range(SIGNALS_KEPT + 3):
        kept = add_signal(kept, Signal(f"e-{n}", EventType.PAGE_VIEWED, NOW))
    assert len(kept) == SIGNALS_KEPT
    assert kept[0].event_id == "e-3" and kept[-1].event_id == f"e-{SIGNALS_KEPT + 2}"


def test_the_first_score_and_any_grade_change_are_worth_emitting():
    assert worth_emitting(None, Scored(0.0, Grade.C, ()), CAR)
    assert worth_emitting(Scored(24.9, Grade.C, ()), Scored(25.0, Grade.B, ()), CAR)


@pytest.mark.parametrize("before, after, worth", [(30.0, 35.0, True), (35.0, 30.0, True), (30.0, 34.9, False),
                                                  (34.9, 30.0, False), (30.0, 30.0, False)])
def test_a_move_within_a_grade_is_worth_emitting_from_the_tenants_delta(before, after, worth):
    assert CAR.emit.min_score_delta == 5
    assert worth_emitting(Scored(before, Grade.B, ()), Scored(after, Grade.B, ()), CAR) is worth


@NO_DB
@given(st.integers(0, 950))
@example(13)  # 1.3 -> 6.3: float subtraction must not make exactly the delta look smaller
def test_a_move_of_exactly_the_delta_is_worth_emitting(tenths):
    before = round(tenths / 10, 1)
    after = round(before + CAR.emit.min_score_delta, 1)
    assert worth_emitting(Scored(before, Grade.C, ()), Scored(after, Grade.C, ()), CAR)
