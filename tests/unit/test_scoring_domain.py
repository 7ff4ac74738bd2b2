"""Scoring domain: decay, caps, verdict and stage effects, grades, explanations and emission threshold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.leads import LeadSnapshot, Stage, Verdict
from schemas.scores import Contribution, Grade
from schemas.touchpoints import EventType
from services.scoring.domain.rules import CAR_DEALER, RuleSet, SignalRule
from services.scoring.domain.score import (
    SIGNALS_KEPT,
    Scored,
    Signal,
    add_signal,
    decay,
    grade_of,
    score,
    worth_emitting,
)

NOW = datetime(2025, 5, 20, 12, 0, tzinfo=timezone.utc)
NO_DB = settings(database=None)  # no .hypothesis/ example database on disk: these are pure tests


def lead(verdict: Verdict = Verdict.VALID, stage: Stage = Stage.LEAD) -> LeadSnapshot:
    return LeadSnapshot(verdict=verdict, stage=stage, reachable=True, touchpoints=1, first_seen_at=NOW, last_seen_at=NOW)


def signals(*specs: tuple[EventType, float]) -> tuple[Signal, ...]:
    """(event type, age in days) pairs -> signals, each with its own event id."""
    return tuple(Signal(f"e-{n}", kind, NOW - timedelta(days=age)) for n, (kind, age) in enumerate(specs))


# ---- decay -----------------------------------------------------------------------------------------


def test_decay_halves_at_one_half_life():
    assert decay(7, 7) == 0.5
    assert decay(14, 7) == 0.25
    assert decay(0, 7) == 1.0


def test_decay_of_future_signals_is_not_amplified():
    assert decay(-3, 7) == 1.0


@NO_DB
@given(st.floats(0, 3650), st.floats(0, 3650), st.floats(0.5, 120))
def test_decay_is_monotonic_and_within_unit_interval(a, b, half_life):
    young, old = sorted((a, b))
    assert 0.0 <= decay(old, half_life) <= decay(young, half_life) <= 1.0


def test_signal_at_one_half_life_counts_half():
    result = score(signals((EventType.FORM_SUBMITTED, 14)), lead(), CAR_DEALER, NOW)
    assert result.score == 15.0


# ---- points, caps, clamping ------------------------------------------------------------------------


def test_fresh_form_alone_scores_30_grade_b():
    result = score(signals((EventType.FORM_SUBMITTED, 0)), lead(), CAR_DEALER, NOW)
    assert result == Scored(30.0, Grade.B, (Contribution(signal="form_submitted", label="留资", count=1, points=30.0),))


def test_no_signals_scores_zero_grade_c():
    assert score((), lead(), CAR_DEALER, NOW) == Scored(0.0, Grade.C, ())


def test_repetition_is_capped():
    result = score(signals(*[(EventType.PRICE_INQUIRED, 0)] * 10), lead(), CAR_DEALER, NOW)
    assert result.contributions == (Contribution(signal="price_inquired", label="价格咨询", count=10, points=30.0),)
    assert result.score == 30.0


def test_below_the_cap_repetitions_add_up():
    result = score(signals((EventType.PRICE_INQUIRED, 0), (EventType.PRICE_INQUIRED, 0)), lead(), CAR_DEALER, NOW)
    assert result.score == 24.0


def test_negative_signals_lower_the_score():
    positive = signals((EventType.FORM_SUBMITTED, 0), (EventType.TEST_DRIVE_BOOKED, 0))
    assert score(positive, lead(), CAR_DEALER, NOW).score == 55.0
    with_complaint = positive + (Signal("e-c", EventType.COMPLAINT_FILED, NOW),)
    assert score(with_complaint, lead(), CAR_DEALER, NOW).score == 40.0


def test_negative_signals_are_capped_too():
    result = score(signals(*[(EventType.COMPLAINT_FILED, 0)] * 5, (EventType.DEPOSIT_PAID, 0)), lead(), CAR_DEALER, NOW)
    complaint = next(c for c in result.contributions if c.signal == "complaint_filed")
    assert complaint.points == -30.0 and complaint.count == 5
    assert result.score == 10.0


def test_score_is_clamped_at_zero():
    result = score(signals((EventType.UNSUBSCRIBED, 0), (EventType.PAGE_VIEWED, 0)), lead(), CAR_DEALER, NOW)
    assert result.score == 0.0 and result.grade is Grade.C


def test_score_is_clamped_at_100():
    many = signals(
        (EventType.FORM_SUBMITTED, 0), (EventType.STORE_VISITED, 0), (EventType.TEST_DRIVE_BOOKED, 0),
        (EventType.QUOTE_REQUESTED, 0), (EventType.DEPOSIT_PAID, 0),
    )
    result = score(many, lead(), CAR_DEALER, NOW)
    assert result.score == 100.0 and result.grade is Grade.H


_events = st.sampled_from(list(EventType))
_signal_specs = st.lists(st.tuples(_events, st.floats(-2, 400)), max_size=40)


@NO_DB
@given(_signal_specs, st.sampled_from(list(Verdict)), st.sampled_from(list(Stage)))
def test_score_always_within_0_and_100(specs, verdict, stage):
    result = score(signals(*specs), lead(verdict, stage), CAR_DEALER, NOW)
    assert 0.0 <= result.score <= 100.0
    for c in result.contributions:
        rule = CAR_DEALER.signals[EventType(c.signal)]
        assert abs(c.points) <= abs(rule.cap)


def test_signals_without_a_rule_contribute_nothing():
    result = score(signals((EventType.ORDER_PLACED, 0), (EventType.SERVICE_VISITED, 0)), lead(), CAR_DEALER, NOW)
    assert result == Scored(0.0, Grade.C, ())


# ---- verdict and stage -----------------------------------------------------------------------------


def test_junk_scores_zero():
    result = score(signals((EventType.FORM_SUBMITTED, 0), (EventType.STORE_VISITED, 0)), lead(Verdict.JUNK), CAR_DEALER, NOW)
    assert result.score == 0.0 and result.grade is Grade.C
    assert len(result.contributions) == 2  # the explanation still says what happened


def test_suspect_is_halved():
    result = score(signals((EventType.FORM_SUBMITTED, 0), (EventType.TEST_DRIVE_BOOKED, 0)), lead(Verdict.SUSPECT), CAR_DEALER, NOW)
    assert result.score == 27.5 and result.grade is Grade.B


def test_suspect_form_alone_drops_to_grade_c():
    result = score(signals((EventType.FORM_SUBMITTED, 0)), lead(Verdict.SUSPECT), CAR_DEALER, NOW)
    assert result.score == 15.0 and result.grade is Grade.C


@pytest.mark.parametrize("stage", [Stage.CUSTOMER, Stage.LOYAL])
def test_customers_are_grade_o_whatever_the_score(stage):
    assert score((), lead(stage=stage), CAR_DEALER, NOW).grade is Grade.O


def test_lost_is_grade_f():
    assert score(signals((EventType.FORM_SUBMITTED, 0)), lead(stage=Stage.LOST), CAR_DEALER, NOW).grade is Grade.F


@pytest.mark.parametrize(
    "value, grade",
    [(100, Grade.H), (75, Grade.H), (74.9, Grade.A), (50, Grade.A), (49.9, Grade.B), (25, Grade.B), (24.9, Grade.C), (0, Grade.C)],
)
def test_grade_thresholds(value, grade):
    assert grade_of(value, Stage.LEAD, CAR_DEALER) is grade


# ---- explanation -----------------------------------------------------------------------------------


def test_explanation_sorted_by_absolute_points_with_labels():
    result = score(
        signals(
            (EventType.PAGE_VIEWED, 0),
            (EventType.COMPLAINT_FILED, 0),
            (EventType.TEST_DRIVE_BOOKED, 0),
            (EventType.UNSUBSCRIBED, 0),
            (EventType.PAGE_VIEWED, 0),
        ),
        lead(),
        CAR_DEALER,
        NOW,
    )
    assert [(c.label, c.count, c.points) for c in result.contributions] == [
        ("退订", 1, -30.0),
        ("试驾预约", 1, 25.0),
        ("投诉", 1, -15.0),
        ("浏览页面", 2, 4.0),
    ]
    assert [c.signal for c in result.contributions] == ["unsubscribed", "test_drive_booked", "complaint_filed", "page_viewed"]


def test_contribution_points_are_rounded_to_one_decimal():
    result = score(signals((EventType.PRICE_INQUIRED, 1)), lead(), CAR_DEALER, NOW)
    assert result.contributions[0].points == round(12 * 0.5 ** (1 / 7), 1) == 10.9


def test_custom_rules_are_used():
    rules = RuleSet(signals={EventType.PAGE_VIEWED: SignalRule("看", 60, 1, 60)}, grade_thresholds=(("H", 50.0),))
    result = score(signals((EventType.PAGE_VIEWED, 0), (EventType.FORM_SUBMITTED, 0)), lead(), rules, NOW)
    assert result == Scored(60.0, Grade.H, (Contribution(signal="page_viewed", label="看", count=1, points=60.0),))


# ---- going quiet -----------------------------------------------------------------------------------


def test_a_lead_that_went_quiet_for_60_days_loses_grade():
    history = (
        Signal("e-1", EventType.FORM_SUBMITTED, NOW),
        Signal("e-2", EventType.TEST_DRIVE_BOOKED, NOW),
    )
    fresh = score(history, lead(), CAR_DEALER, NOW)
    later = score(history, lead(), CAR_DEALER, NOW + timedelta(days=60))
    assert (fresh.score, fresh.grade) == (55.0, Grade.A)
    assert later.grade is Grade.C
    assert later.score == round(round(30 * 0.5 ** (60 / 14), 1) + round(25 * 0.5 ** 6, 1), 1) == 1.9
    assert worth_emitting(fresh, later, CAR_DEALER)


# ---- signals window and emission -------------------------------------------------------------------


def test_add_signal_keeps_the_latest():
    kept: tuple[Signal, ...] = ()
    for n in range(SIGNALS_KEPT + 3):
        kept = add_signal(kept, Signal(f"e-{n}", EventType.PAGE_VIEWED, NOW))
    assert len(kept) == SIGNALS_KEPT
    assert kept[0].event_id == "e-3" and kept[-1].event_id == f"e-{SIGNALS_KEPT + 2}"


def test_first_score_is_always_worth_emitting():
    assert worth_emitting(None, Scored(0.0, Grade.C, ()), CAR_DEALER)


def test_grade_change_is_worth_emitting_even_for_a_tiny_delta():
    assert worth_emitting(Scored(24.9, Grade.C, ()), Scored(25.0, Grade.B, ()), CAR_DEALER)


@pytest.mark.parametrize("before, after", [(30.0, 31.0), (31.0, 30.0), (30.0, 45.5), (60.0, 52.2)])
def test_move_of_at_least_one_point_is_worth_emitting(before, after):
    grade = grade_of(before, Stage.LEAD, CAR_DEALER)
    assert worth_emitting(Scored(before, grade, ()), Scored(after, grade_of(after, Stage.LEAD, CAR_DEALER), ()), CAR_DEALER)


@pytest.mark.parametrize("before, after", [(30.0, 30.0), (30.0, 30.9), (30.9, 30.0), (10.0, 10.5)])
def test_small_move_without_grade_change_is_not_worth_emitting(before, after):
    assert not worth_emitting(Scored(before, Grade.B, ()), Scored(after, Grade.B, ()), CAR_DEALER)


@NO_DB
@given(st.integers(0, 990))
@example(13)  # 1.3 -> 2.3: 2.3 - 1.3 == 0.9999999999999998 in binary floating point
@example(4)  # 0.4 -> 1.4
def test_move_of_exactly_one_point_is_worth_emitting(tenths):
    # Scores are rounded to one decimal; a move of exactly min_score_delta (1.0) is not "smaller".
    before = round(tenths / 10, 1)
    after = round(before + 1.0, 1)
    grade = Grade.C
    assert worth_emitting(Scored(before, grade, ()), Scored(after, grade, ()), CAR_DEALER)
