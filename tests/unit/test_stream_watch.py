"""The stream watch, pure: stalled groups and lag growing reading after reading become StreamAlerted
events, each condition once an hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadflow.runtime.watch import StreamWatch, WatchPolicy

T = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def reading(lag: int, stalled: bool = False, group: str = "leadflow-scoring", topic: str = "leads.changes") -> list[dict]:
    return [{"group": group, "topic": topic, "lag": lag, "stalled": stalled}]


def test_a_stalled_group_is_raised_once_an_hour():
    watch = StreamWatch()
    [alert] = watch.observe(reading(500, stalled=True), T)
    assert (alert.kind, alert.group, alert.topic, alert.lag, alert.readings) == (
        "consumer_stalled", "leadflow-scoring", "leads.changes", 500, 1)
    assert watch.observe(reading(500, stalled=True), T + timedelta(minutes=5)) == []
    [again] = watch.observe(reading(500, stalled=True), T + timedelta(hours=1))
    assert again.alert_id != alert.alert_id and again.readings == 3


def test_lag_growing_at_every_reading_past_the_minimum_is_raised():
    watch = StreamWatch(WatchPolicy(growing_readings=3, min_lag=1000))
    raised = [watch.observe(reading(lag), T + timedelta(seconds=10 * n)) for n, lag in enumerate((800, 900, 1000, 1200))]
    assert [len(r) for r in raised] == [0, 0, 0, 1] and raised[-1][0].kind == "lag_growing"


def test_lag_that_falls_back_or_stays_small_is_not_trouble():
    watch = StreamWatch(WatchPolicy(growing_readings=3, min_lag=1000))
    lags = (2000, 2500, 2400, 2600, 2700)  # it fell once: the run starts again
    assert all(watch.observe(reading(lag), T) == [] for lag in lags)
    small = StreamWatch(WatchPolicy(growing_readings=2, min_lag=1000))
    assert all(small.observe(reading(lag), T) == [] for lag in (10, 20, 30, 40))
