"""Stalled partitions, as pure bookkeeping over lag readings."""

from leadflow.runtime.lag import PartitionLag, StallDetector


def reading(committed: int, end: int) -> list[PartitionLag]:
    return [PartitionLag("g", "t", 0, committed, end)]


def test_a_lagging_partition_whose_offset_does_not_move_stalls_after_the_threshold():
    detector = StallDetector(after_s=60)
    assert detector.observe(reading(5, 10), now=0) == {("g", "t", 0): False}
    assert detector.observe(reading(5, 12), now=59) == {("g", "t", 0): False}
    assert detector.observe(reading(5, 12), now=60) == {("g", "t", 0): True}


def test_progress_or_no_lag_restarts_the_clock():
    detector = StallDetector(after_s=60)
    detector.observe(reading(5, 10), now=0)
    assert detector.observe(reading(6, 10), now=100) == {("g", "t", 0): False}  # it moved
    assert detector.observe(reading(6, 10), now=150) == {("g", "t", 0): False}
    assert detector.observe(reading(6, 10), now=160) == {("g", "t", 0): True}
    assert detector.observe(reading(10, 10), now=500) == {("g", "t", 0): False}  # caught up: idle is fine
    assert detector.observe(reading(10, 10), now=900) == {("g", "t", 0): False}
