"""The soak's memory reading: medians at each end, so a heap's swing between collections is not a leak."""

from __future__ import annotations

from bench.soak import memory


def test_a_sawtooth_heap_reads_as_flat_and_a_steady_climb_as_growth():
    sawtooth = [{"store": kib} for kib in (69, 70, 86, 68, 71, 69, 88, 70, 69, 72, 90)]
    start, end, peak = memory(sawtooth, "store")
    assert (start, end, peak) == (70, 72, 90)  # one reading at each end (69, 90) would say +30%
    climbing = [{"leads": 100 + minute} for minute in range(60)]
    start, end, _ = memory(climbing, "leads")
    assert (start, end) == (102, 157)


def test_a_process_never_seen_has_no_reading():
    assert memory([{"api": None}, {}], "api") == (None, None, 0.0)
