"""Source quality math: hours, counts, the decaying baseline, the alert rule and the ops report."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.leads import Verdict
from services.leads.domain.source_quality import (
    BUCKET,
    DIMENSIONS,
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


# ---- hours and sources -----------------------------------------------------------------------------


def test_bucket_of_is_the_start_of_the_utc_hour():
    assert BUCKET == timedelta(hours=1)
    assert bucket_of(H0) == H0
    assert bucket_of(H0 + timedelta(minutes=59, seconds=59, milliseconds=999)) == H0
    assert bucket_of(H0 + timedelta(minutes=59, seconds=59, microseconds=999_999)) == H0
    assert bucket_of(H0 + BUCKET) == H0 + BUCKET
    assert bucket_of(H0 - timedelta(microseconds=1)) == H0 - BUCKET


def test_bucket_of_works_in_utc_whatever_the_zone():
    beijing = timezone(timedelta(hours=8))
    out = bucket_of(datetime(2026, 3, 1, 18, 30, tzinfo=beijing))
    assert out == H0 and out.utcoffset() == timedelta(0)
    # Half-hour zones and day boundaries: 00:15 in India is 18:45 UTC the day before.
    india = timezone(timedelta(hours=5, minutes=30))
    assert bucket_of(datetime(2026, 3, 2, 0, 15, tzinfo=india)) == datetime(2026, 3, 1, 18, tzinfo=UTC)
    naive = bucket_of(datetime(2026, 3, 1, 10, 30))
    assert naive == H0 and naive.tzinfo is not None  # naive is taken as UTC and comes back aware


def test_sources_of_skips_what_a_touchpoint_lacks():
    assert DIMENSIONS == ("channel", "campaign", "store")
    assert sources_of("douyin", "cmp-1", "s-1") == [("channel", "douyin"), ("campaign", "cmp-1"), ("store", "s-1")]
    assert sources_of("web", None, "s-2") == [("channel", "web"), ("store", "s-2")]
    assert sources_of("web", "", None) == [("channel", "web")]


# ---- counts ----------------------------------------------------------------------------------------


def test_counts_add_up_and_give_rates():
    c = Counts.of(Verdict.VALID) + Counts.of(Verdict.SUSPECT) + Counts.of(Verdict.JUNK) + Counts.of(Verdict.JUNK)
    assert c == Counts(valid=1, suspect=1, junk=2)
    assert (c.total, c.bad, c.bad_rate, c.junk_rate, c.suspect_rate) == (4, 3, 0.75, 0.5, 0.25)
    assert c + Counts() == c


def test_empty_counts_have_zero_rates():
    empty = Counts()
    assert (empty.total, empty.bad, empty.bad_rate, empty.junk_rate, empty.suspect_rate) == (0, 0, 0.0, 0.0, 0.0)


# ---- the baseline ----------------------------------------------------------------------------------


def test_the_first_hour_sets_the_baseline():
    first = Baseline().fold(H0, Counts(valid=90, junk=6, suspect=4), POLICY)
    assert (first.rate, first.volume, first.through) == (0.1, 100, H0)


def test_after_one_half_life_the_old_volume_counts_half():
    first = Baseline().fold(H0, Counts(valid=90, junk=10), POLICY)
    later = first.fold(H0 + timedelta(hours=POLICY.half_life_hours), Counts(valid=50, junk=50), POLICY)
    assert later.volume == pytest.approx(150)  # 100 halved, plus 100
    assert later.rate == pytest.approx((0.1 * 50 + 50) / 150)
    assert later.through == H0 + timedelta(hours=POLICY.half_life_hours)


def test_the_half_life_comes_from_the_policy():
    fast = AlertPolicy(half_life_hours=1)
    b = Baseline().fold(H0, Counts(valid=64), fast).fold(H0 + 3 * BUCKET, Counts(junk=8), fast)
    assert b.volume == pytest.approx(64 / 8 + 8)
    assert b.rate == pytest.approx(0.5)


def test_an_empty_hour_still_lets_time_pass():
    first = Baseline().fold(H0, Counts(valid=80, junk=20), POLICY)
    quiet = first.fold(H0 + timedelta(hours=POLICY.half_life_hours), Counts(), POLICY)
    assert quiet.rate == first.rate and quiet.volume == pytest.approx(50)
    # The next hour decays only from the quiet one, not again from H0.
    next_ = quiet.fold(quiet.through + BUCKET, Counts(valid=10), POLICY)
    assert next_.volume == pytest.approx(50 * 0.5 ** (1 / POLICY.half_life_hours) + 10)


def test_folding_an_hour_again_or_an_older_hour_changes_nothing():
    once = Baseline().fold(H0, Counts(valid=10), POLICY)
    assert once.fold(H0, Counts(junk=1000), POLICY) == once  # a replay
    assert once.fold(H0 - 3 * BUCKET, Counts(junk=1000), POLICY) == once  # late and out of order
    twice = once.fold(H0 + BUCKET, Counts(junk=10), POLICY)
    assert twice.fold(H0 + BUCKET, Counts(junk=10), POLICY) == twice


def test_a_naive_through_from_an_old_document_still_compares():
    stored = Baseline(rate=0.1, volume=100, through=datetime(2026, 3, 1, 10))  # naive: UTC
    assert stored.fold(H0, Counts(junk=100), POLICY) == stored
    assert stored.fold(H0 + BUCKET, Counts(junk=100), POLICY).through == H0 + BUCKET


def test_the_baseline_converges_to_a_steady_rate():
    b = Baseline().fold(H0, Counts(valid=0, junk=100), POLICY)  # a bad start is forgotten
    for hour in range(1, 1000):
        b = b.fold(H0 + hour * BUCKET, Counts(valid=80, suspect=20), POLICY)
    assert b.rate == pytest.approx(0.2, abs=1e-3)
    # The volume settles where one hour's decay equals one hour's count.
    assert b.volume == pytest.approx(100 / (1 - 0.5 ** (1 / POLICY.half_life_hours)), rel=1e-3)


def test_a_source_without_enough_history_uses_the_default():
    thin = Baseline(rate=0.9, volume=POLICY.min_baseline_volume - 1, through=H0)
    assert thin.reference(POLICY) == POLICY.default_baseline and thin.own_rate(POLICY) is None
    enough = Baseline(rate=0.9, volume=POLICY.min_baseline_volume, through=H0)
    assert enough.reference(POLICY) == 0.9 == enough.own_rate(POLICY)
    assert Baseline().reference(POLICY) == POLICY.default_baseline


# ---- the alert rule --------------------------------------------------------------------------------


def test_no_alert_below_the_minimum_volume():
    assert check("channel", "web", H0, Counts(junk=POLICY.min_volume - 1), Baseline(), POLICY) is None
    assert check("channel", "web", H0, Counts(junk=POLICY.min_volume), Baseline(), POLICY) is not None


def test_a_jump_needs_both_the_ratio_and_the_margin():
    low = Baseline(rate=0.02, volume=1000, through=H0)
    # 10% is 5× of 2% but only 8 points above: noise on a small baseline.
    assert check("channel", "web", H0, Counts(valid=90, junk=10), low, POLICY) is None
    high = Baseline(rate=0.40, volume=1000, through=H0)
    # 70% is 30 points above 40% but not twice it.
    assert check("channel", "web", H0, Counts(valid=30, junk=70), high, POLICY) is None
    # Both: 13% is 6.5× of 2% and 11 points above.
    assert check("channel", "web", H0, Counts(valid=87, junk=13), low, POLICY) is not None


def test_a_source_without_history_is_compared_against_the_default():
    # 28% would be a jump for a 5% source but is under twice the 15% default.
    assert check("campaign", "cmp-1", H0, Counts(valid=72, suspect=28), Baseline(), POLICY) is None
    thin = Baseline(rate=0.01, volume=POLICY.min_baseline_volume - 1, through=H0)
    assert check("campaign", "cmp-1", H0, Counts(valid=72, suspect=28), thin, POLICY) is None
    alert = check("campaign", "cmp-1", H0, Counts(valid=10, suspect=15), thin, POLICY)
    assert alert is not None and alert.baseline == POLICY.default_baseline and alert.bad_rate == 0.6


def test_a_jump_from_five_to_sixty_percent_alerts_once_per_hour():
    steady = Baseline(rate=0.05, volume=500, through=H0 - BUCKET)
    alert = check("campaign", "cmp-1", H0, Counts(valid=40, junk=60), steady, POLICY)
    assert alert is not None
    assert (alert.dimension, alert.value, alert.bucket) == ("campaign", "cmp-1", H0)
    assert (alert.bad_rate, alert.baseline, alert.reason) == (0.6, 0.05, "bad_rate_above_baseline")
    assert alert.alert_id == "campaign\x1fcmp-1\x1f2026-03-01T10:00:00+00:00"
    # More touchpoints in the same hour, or the same hour in another zone: the same alert.
    again = check("campaign", "cmp-1", H0, Counts(valid=40, junk=61), steady, POLICY)
    beijing = check("campaign", "cmp-1", H0.astimezone(timezone(timedelta(hours=8))), Counts(junk=60, valid=40),
                    steady, POLICY)
    assert again.alert_id == beijing.alert_id == alert.alert_id
    later = check("campaign", "cmp-1", H0 + BUCKET, Counts(junk=60, valid=40), steady, POLICY)
    other = check("store", "cmp-1", H0, Counts(junk=60, valid=40), steady, POLICY)
    assert len({alert.alert_id, later.alert_id, other.alert_id}) == 3


# ---- the ops report --------------------------------------------------------------------------------


def test_report_sums_the_window():
    rows = [
        ("channel", "web", H0 - 3 * BUCKET, Counts(junk=500)),  # before since
        ("channel", "web", H0, Counts(valid=90, junk=10)),
        ("channel", "web", H0 + BUCKET, Counts(valid=10, suspect=2)),
        ("channel", "web", H0 + 2 * BUCKET, Counts(junk=500)),  # at until: outside
        ("channel", "douyin", H0 - 2 * BUCKET, Counts(junk=500)),  # the hour since falls in, started before it
    ]
    out = report(rows, {}, since=H0 - 2 * BUCKET + timedelta(minutes=30), until=H0 + 2 * BUCKET, policy=POLICY)
    assert [(r.dimension, r.value, r.counts) for r in out] == [("channel", "web", Counts(valid=100, suspect=2,
                                                                                        junk=10))]
    assert report(rows, {}, since=H0 + 5 * BUCKET, until=H0 + 6 * BUCKET, policy=POLICY) == []


def test_report_puts_the_worst_first_then_the_busiest():
    rows = [
        ("store", "s-1", H0, Counts(valid=100)),
        ("channel", "web", H0, Counts(valid=8, junk=2)),
        ("campaign", "c-2", H0, Counts(valid=4, junk=1)),  # the same rate as web, fewer touchpoints
        ("campaign", "c-1", H0, Counts(valid=8, junk=2)),  # the same rate and total as web: by name
        ("channel", "douyin", H0, Counts(valid=3, junk=7)),
    ]
    out = report(rows, {}, since=H0, until=H0 + BUCKET, policy=POLICY)
    assert [(r.dimension, r.value) for r in out] == [
        ("channel", "douyin"), ("campaign", "c-1"), ("channel", "web"), ("campaign", "c-2"), ("store", "s-1")]


def test_report_flags_a_source_alerting_in_its_newest_hour_only():
    steady = Baseline(rate=0.05, volume=1000, through=H0 - BUCKET)
    rows = [
        ("channel", "now-bad", H0, Counts(valid=100)),
        ("channel", "now-bad", H0 + BUCKET, Counts(valid=40, junk=60)),
        ("channel", "was-bad", H0, Counts(valid=40, junk=60)),  # bad an hour ago, clean since
        ("channel", "was-bad", H0 + BUCKET, Counts(valid=100)),
    ]
    baselines = {("channel", "now-bad"): steady, ("channel", "was-bad"): steady}
    out = {r.value: r for r in report(rows, baselines, since=H0, until=H0 + 2 * BUCKET, policy=POLICY)}
    assert out["now-bad"].alerting and not out["was-bad"].alerting
    assert out["now-bad"].baseline == 0.05


def test_report_shows_a_baseline_only_once_it_has_enough_history():
    rows = [("channel", "new", H0, Counts(valid=5, junk=20)), ("channel", "old", H0, Counts(valid=5))]
    baselines = {("channel", "new"): Baseline(rate=0.9, volume=POLICY.min_baseline_volume - 1, through=H0 - BUCKET),
                 ("channel", "old"): Baseline(rate=0.1, volume=5000, through=H0 - BUCKET)}
    out = {r.value: r for r in report(rows, baselines, since=H0, until=H0 + BUCKET, policy=POLICY)}
    assert out["new"].baseline is None and out["new"].alerting  # compared against the 15% default
    assert out["old"].baseline == 0.1 and not out["old"].alerting  # 5 touchpoints: too few to alert


# ---- the policy ------------------------------------------------------------------------------------


def test_alert_policy_from_mapping():
    assert AlertPolicy.from_mapping({}) == AlertPolicy()
    policy = AlertPolicy.from_mapping({"ratio": 3, "min_volume": 5, "half_life_hours": 24})
    assert policy == AlertPolicy(ratio=3.0, min_volume=5, half_life_hours=24.0)
    assert isinstance(policy.ratio, float)


@pytest.mark.parametrize(("data", "name"), [
    ({"treshold": 1}, "treshold"),
    ({"ratio": 0.5}, "ratio"),
    ({"ratio": math.inf}, "ratio"),
    ({"margin": True}, "margin"),
    ({"margin": 1.5}, "margin"),
    ({"default_baseline": -0.1}, "default_baseline"),
    ({"min_volume": 1.5}, "min_volume"),
    ({"min_volume": 0}, "min_volume"),
    ({"min_baseline_volume": "50"}, "min_baseline_volume"),
    ({"half_life_hours": 0}, "half_life_hours"),
    ({"half_life_hours": math.nan}, "half_life_hours"),
])
def test_bad_alert_policies_name_the_key(data, name):
    with pytest.raises(AlertPolicyError, match=name):
        AlertPolicy.from_mapping(data)


def test_an_alert_policy_must_be_a_table():
    with pytest.raises(AlertPolicyError, match="alerts"):
        AlertPolicy.from_mapping(5)  # type: ignore[arg-type]


# ---- properties ------------------------------------------------------------------------------------

hours = st.tuples(st.integers(-50, 2000), st.integers(0, 300), st.integers(0, 300), st.integers(0, 300))


@NO_DB
@given(st.lists(hours, max_size=60), st.floats(0.01, 10_000))
def test_the_baseline_rate_stays_a_rate_for_any_folds(folds, half_life):
    policy = AlertPolicy(half_life_hours=half_life)
    b = Baseline()
    for hour, valid, suspect, junk in folds:  # in any order, with replays and empty hours
        before = b
        b = b.fold(H0 + hour * BUCKET, Counts(valid, suspect, junk), policy)
        assert b.rate is None or 0.0 <= b.rate <= 1.0
        assert b.volume >= 0 and math.isfinite(b.volume)
        assert before.through is None or b.through >= before.through
        assert 0.0 <= b.reference(policy) <= 1.0
