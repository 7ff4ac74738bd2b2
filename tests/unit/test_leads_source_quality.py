"""Source quality math: hours, counts, the decaying baseline, the alert rule and the ops report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.leads import Verdict
from services.leads.domain.source_quality import (
    AlertPolicy,
    AlertPolicyError,
    Baseline,
    Counts,
    bucket_of,
    check,
    report,
    sources_of,
)

NO_DB = settings(database=None)
H0 = datetime(2026, 3, 1, 10, tzinfo=UTC)
POLICY = AlertPolicy()


def test_bucket_of_is_the_start_of_the_utc_hour():
    assert bucket_of(H0 + timedelta(minutes=59, seconds=59, microseconds=999_999)) == H0
    assert bucket_of(H0 + timedelta(hours=1)) == H0 + timedelta(hours=1)
    beijing = timezone(timedelta(hours=8))
    assert bucket_of(datetime(2026, 3, 1, 18, 30, tzinfo=beijing)) == H0
    assert bucket_of(datetime(2026, 3, 1, 10, 30)) == H0  # naive: UTC


def test_sources_of_skips_what_a_touchpoint_lacks():
    assert sources_of("douyin", "cmp-1", "s-1") == [("channel", "douyin"), ("campaign", "cmp-1"), ("store", "s-1")]
    assert sources_of("web", None, None) == [("channel", "web")]


def test_counts():
    c = Counts.of(Verdict.VALID) + Counts.of(Verdict.SUSPECT) + Counts.of(Verdict.JUNK) + Counts.of(Verdict.JUNK)
    assert (c.total, c.bad, c.bad_rate, c.junk_rate, c.suspect_rate) == (4, 3, 0.75, 0.5, 0.25)
    assert Counts().bad_rate == 0.0 and Counts().total == 0


def test_the_baseline_decays_by_its_half_life():
    first = Baseline().fold(H0, Counts(valid=90, junk=10), POLICY)
    assert (first.rate, first.volume, first.through) == (0.1, 100, H0)
    later = first.fold(H0 + timedelta(hours=POLICY.half_life_hours), Counts(valid=50, junk=50), POLICY)
    assert later.volume == pytest.approx(150)  # 100 halved, plus 100
    assert later.rate == pytest.approx((0.1 * 50 + 50) / 150)


def test_folding_an_hour_again_or_an_older_hour_changes_nothing():
    once = Baseline().fold(H0, Counts(valid=10), POLICY)
    assert once.fold(H0, Counts(junk=1000), POLICY) is once
    assert once.fold(H0 - timedelta(hours=3), Counts(junk=1000), POLICY) is once


def test_the_baseline_converges_to_a_steady_rate():
    b = Baseline()
    for hour in range(500):
        b = b.fold(H0 + timedelta(hours=hour), Counts(valid=80, suspect=20), POLICY)
    assert b.rate == pytest.approx(0.2)


def test_no_alert_below_the_minimum_volume():
    assert check("channel", "web", H0, Counts(junk=POLICY.min_volume - 1), Baseline(), POLICY) is None


def test_a_jump_needs_both_the_ratio_and_the_margin():
    steady = Baseline(rate=0.02, volume=1000, through=H0)
    # 5% is 2.5× of 2% but only 3 points above: noise on a small baseline.
    assert check("channel", "web", H0, Counts(valid=95, junk=5), steady, POLICY) is None
    high = Baseline(rate=0.40, volume=1000, through=H0)
    # 55% is 15 points above 40% but not twice it.
    assert check("channel", "web", H0, Counts(valid=45, junk=55), high, POLICY) is None


def test_a_source_without_history_compares_against_the_default():
    quiet = Baseline(rate=0.9, volume=POLICY.min_baseline_volume - 1, through=H0)
    assert quiet.reference(POLICY) == POLICY.default_baseline
    alert = check("campaign", "cmp-1", H0, Counts(valid=10, suspect=15), quiet, POLICY)
    assert alert is not None and alert.baseline == POLICY.default_baseline


def test_a_jump_from_five_to_sixty_percent_alerts_once_per_hour():
    steady = Baseline(rate=0.05, volume=500, through=H0 - timedelta(hours=1))
    alert = check("campaign", "cmp-1", H0, Counts(valid=40, junk=60), steady, POLICY)
    assert alert is not None and alert.bad_rate == 0.6 and alert.baseline == 0.05
    again = check("campaign", "cmp-1", H0, Counts(valid=40, junk=61), steady, POLICY)
    assert again.alert_id == alert.alert_id
    assert check("campaign", "cmp-1", H0 + timedelta(hours=1), Counts(junk=60, valid=40), steady, POLICY).alert_id != alert.alert_id


def test_report_sums_the_window_and_puts_the_worst_first():
    rows = [
        ("channel", "web", H0 - timedelta(hours=30), Counts(junk=500)),  # outside the window
        ("channel", "web", H0, Counts(valid=90, junk=10)),
        ("channel", "web", H0 + timedelta(hours=1), Counts(valid=10)),
        ("channel", "douyin", H0, Counts(valid=30, junk=70)),
        ("store", "s-1", H0, Counts(valid=100)),
    ]
    out = report(rows, {("channel", "douyin"): Baseline(rate=0.1, volume=1000, through=H0 - timedelta(hours=1))},
                 since=H0 - timedelta(hours=24), until=H0 + timedelta(hours=2), policy=POLICY)
    assert [(r.dimension, r.value) for r in out] == [("channel", "douyin"), ("channel", "web"), ("store", "s-1")]
    assert out[1].counts == Counts(valid=100, junk=10)
    assert out[0].alerting and out[0].baseline == 0.1
    assert not out[1].alerting and out[1].baseline is None


@pytest.mark.parametrize(("data", "name"), [({"ratio": 0.5}, "ratio"), ({"min_volume": 1.5}, "min_volume"),
                                            ({"treshold": 1}, "treshold"), ({"margin": True}, "margin")])
def test_bad_alert_policies_name_the_key(data, name):
    with pytest.raises(AlertPolicyError, match=name):
        AlertPolicy.from_mapping(data)


def test_alert_policy_from_mapping():
    assert AlertPolicy.from_mapping({"ratio": 3, "min_volume": 5}) == AlertPolicy(ratio=3.0, min_volume=5)


@NO_DB
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 200), st.integers(0, 200), st.integers(0, 200))))
def test_the_baseline_rate_stays_a_rate(folds):
    b = Baseline()
    for hour, valid, suspect, junk in sorted(folds):
        b = b.fold(H0 + timedelta(hours=hour), Counts(valid, suspect, junk), POLICY)
        assert b.rate is None or 0.0 <= b.rate <= 1.0
        assert b.volume >= 0
