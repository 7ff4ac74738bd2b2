"""Learning from outcomes, pure: the online logistic regression, the blend weight, and the held-out
measures (AUC, calibration) reported in GET /v1/scores/model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain.learning import Evaluation, Model, auc, blend_weight, calibration, quality, sigmoid, update
from services.scoring.domain.rules import Learning, LearningMode

NO_DB = settings(database=None)
LEARN = Learning()


def test_sigmoid_is_stable_at_the_extremes():
    assert sigmoid(0) == 0.5 and sigmoid(800) == 1.0 and sigmoid(-800) == 0.0


def test_one_step_moves_the_prediction_towards_the_label():
    x = {"a": 1.0, "b": 0.5}
    for label in (0, 1):
        after = update(Model(), x, label, LEARN)
        assert (after.predict(x) > 0.5) is bool(label)
        assert (after.n, after.positives, after.version) == (1, label, 1)


def test_it_learns_which_signal_predicts_conversion():
    rng = random.Random(5)
    model = Model()
    for _ in range(600):
        visit, views = rng.random() < 0.5, rng.random()
        converted = int(rng.random() < (0.8 if visit else 0.1))
        model = update(model, {"visit": float(visit), "views": views}, converted, LEARN)
    assert model.weights["visit"] > 1.0 and abs(model.weights["views"]) < model.weights["visit"] / 2
    assert model.predict({"visit": 1.0, "views": 0.5}) == pytest.approx(0.8, abs=0.1)
    assert model.predict({"visit": 0.0, "views": 0.5}) == pytest.approx(0.1, abs=0.1)


def test_the_blend_weight_waits_for_enough_outcomes_then_grows_towards_its_maximum():
    assert blend_weight(LEARN.min_outcomes - 1, LEARN) == 0.0
    assert blend_weight(LEARN.ramp, LEARN) == LEARN.max_weight / 2
    weights = [blend_weight(n, LEARN) for n in range(LEARN.min_outcomes, 5000, 250)]
    assert weights == sorted(weights) and weights[-1] < LEARN.max_weight
    assert blend_weight(10_000, Learning(mode=LearningMode.OFF)) == 0.0


@pytest.mark.parametrize("pairs, expected", [
    ([(0.9, 1), (0.8, 1), (0.2, 0), (0.1, 0)], 1.0),
    ([(0.1, 1), (0.9, 0)], 0.0),
    ([(0.5, 1), (0.5, 0)], 0.5),
    ([(0.9, 1), (0.4, 1), (0.6, 0), (0.1, 0)], 0.75),
    ([(0.3, 1), (0.3, 1)], None),
])
def test_auc(pairs, expected):
    assert auc(pairs) == expected


@NO_DB
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 1)), min_size=2, max_size=60))
def test_auc_is_a_probability_and_flips_with_the_ranking(pairs):
    a = auc(pairs)
    if a is not None:
        assert 0.0 <= a <= 1.0
        assert auc([(-p, y) for p, y in pairs]) == pytest.approx(1 - a)


def test_calibration_bins_and_errors():
    pairs = [(0.05, 0)] * 10 + [(0.95, 1)] * 9 + [(0.95, 0)]
    cal = calibration(pairs)
    assert [(b.lower, b.count, b.observed) for b in cal.bins] == [(0.0, 10, 0.0), (0.9, 10, 0.9)]
    assert cal.ece == pytest.approx((10 * 0.05 + 10 * 0.05) / 20)
    assert cal.brier == pytest.approx(round((10 * 0.05**2 + 9 * 0.05**2 + 0.95**2) / 20, 4))
    assert calibration([]) is None


def test_quality_reports_each_of_rules_model_and_blend():
    evaluations = [Evaluation(0.8, 0.3, 0.6, 1), Evaluation(0.2, 0.7, 0.4, 0), Evaluation(0.6, 0.5, 0.55, 1)]
    q = quality(evaluations)
    assert (q.n, q.positives) == (3, 2)
    assert q.auc == {"rules": 1.0, "model": 0.0, "blend": 1.0}
    assert set(q.calibration) == {"rules", "model", "blend"}


def test_prequentially_on_the_simulator_the_blend_ranks_converters_first():
    """The protocol of bench/scoring_quality.py on a small stream: each lead is scored before its
    outcome trains the model, and the learned blend ranks buyers above the rest."""
    from bench.scoring_quality import cases, prequential
    from services.scoring.domain.rules import builtin

    found = cases(8_000, seed=3)
    evaluations, _, model = prequential(found, builtin("car_dealer"))
    assert len(evaluations) == len(found) == model.n and 50 < model.positives < model.n
    assert evaluations[0].model == 0.5  # the first lead meets an untrained model: tested before trained
    labels = [e.label for e in evaluations]
    assert auc(list(zip([e.model for e in evaluations], labels, strict=True))) > 0.95
    assert auc(list(zip([e.blend for e in evaluations], labels, strict=True))) > 0.95
