"""The crash test, shortened for `make test` (`make chaos` runs the long one): a stream with 10%
duplicated event ids while every worker is SIGKILLed twice and the broker and the store once each.
Every accepted event is reflected exactly once at every stage; see tests/chaos/harness.py."""

from __future__ import annotations

from tests.chaos.harness import ChaosPlan, run


def test_no_event_is_lost_or_doubled_when_workers_broker_and_store_are_killed():
    plan = ChaosPlan(rate=20.0, events=1200, kills_per_worker=2, seed=11)
    report = run(plan, say=lambda line: None)
    print("\n".join(report.lines()))  # pytest shows it when the test fails
    assert report.accepted >= plan.events
    assert len(report.faults) == 5 * 2 + 2
    assert all(f.at_progress >= plan.start_after for f in report.faults)
    assert report.problems == []
