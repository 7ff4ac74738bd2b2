"""The timers' agenda against the real store: what it enters, what the timer finds, how entries follow
their documents, the twice-daily sweep, and upserts of one key racing (FerretDB v1 answers the loser
with a duplicate key)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from leadflow.runtime.agenda import HORIZON, Agenda, Entry
from leadflow.runtime.ownership import PartitionOwnership

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


async def agenda_of(db) -> Agenda:
    agenda = Agenda(db["agenda"], clock=lambda: NOW)
    await agenda.ensure_indexes()
    return agenda


async def keys_due(agenda: Agenda, at: datetime) -> list[tuple[str, str, datetime]]:
    return sorted((e.tenant_id, e.key, e.due_at) for e in await agenda.due(at, 100))


async def test_only_keys_due_within_the_horizon_are_entered_and_found_once_their_time_came(db):
    agenda = await agenda_of(db)
    soon, late = NOW + timedelta(hours=3), NOW + HORIZON + timedelta(hours=1)
    await agenda.schedule("t1", "p1", soon)
    await agenda.schedule("t1", "p2", late)
    await agenda.schedule("t2", "p1", None)
    assert await db["agenda"].count_documents({"due_at": {"$exists": True}}) == 1
    assert await keys_due(agenda, soon - timedelta(seconds=1)) == []
    assert await keys_due(agenda, soon) == [("t1", "p1", soon)]


async def test_an_entry_follows_its_document_once_the_timer_looked(db):
    agenda = await agenda_of(db)
    await agenda.schedule("t1", "p1", NOW)
    await agenda.schedule("t1", "p2", NOW)
    [first, second] = sorted(await agenda.due(NOW, 10), key=lambda e: e.key)
    await agenda.settle(first, NOW + timedelta(hours=2), NOW)  # moved within the horizon: moved
    await agenda.settle(second, NOW + HORIZON * 3, NOW)  # moved beyond it: dropped until a sweep
    assert await keys_due(agenda, NOW + HORIZON) == [("t1", "p1", NOW + timedelta(hours=2))]
    await agenda.settle(Entry("t1", "p1", NOW + timedelta(hours=2)), None, NOW)  # nothing due any more
    assert await keys_due(agenda, NOW + HORIZON * 5) == []


async def test_the_sweep_runs_at_most_every_half_horizon_and_enters_what_came_within_it(db):
    agenda = await agenda_of(db)
    assert await agenda.sweep_needed(NOW)  # never swept: the first timer run after a deploy sweeps
    found = [("t1", "p1", NOW + timedelta(hours=1)), ("t1", "p2", NOW + HORIZON * 2)]
    assert await agenda.swept(found, NOW) == 1
    assert not await agenda.sweep_needed(NOW + HORIZON / 2 - timedelta(seconds=1))
    assert await agenda.sweep_needed(NOW + HORIZON / 2)
    assert await keys_due(agenda, NOW + HORIZON * 3) == [("t1", "p1", NOW + timedelta(hours=1))]
    await agenda.sweep_soon()  # a tenant's re-score made everybody due at once
    assert await agenda.sweep_needed(NOW)
    # The marker is never an entry.
    assert await agenda.due(NOW + HORIZON * 100, 100) == [Entry("t1", "p1", NOW + timedelta(hours=1), "p1")]


async def test_upserts_of_one_key_racing_all_succeed_and_leave_one_entry(db):
    agenda = await agenda_of(db)
    times = [NOW + timedelta(minutes=n) for n in range(12)]
    # Ten keys, each scheduled twelve times at once: without the retry, FerretDB v1 fails some of them.
    await asyncio.gather(*(agenda.schedule("t1", f"p{k}", at) for k in range(10) for at in times))
    entries = await agenda.due(NOW + HORIZON, 100)
    assert sorted(e.key for e in entries) == sorted(f"p{k}" for k in range(10))
    assert all(e.due_at in times for e in entries)
    await agenda.drop("t1", "p1")
    assert len(await agenda.due(NOW + HORIZON, 100)) == 9


async def test_a_later_due_time_never_moves_an_entry_later_but_the_timer_does(db):
    agenda = await agenda_of(db)
    early, late = NOW + timedelta(hours=1), NOW + timedelta(hours=5)
    await agenda.schedule("t1", "p1", early)
    await agenda.schedule("t1", "p1", late)  # the document's write may never come: the early look stays
    [entry] = await agenda.due(NOW + HORIZON, 10)
    assert entry.due_at == early
    await agenda.settle(entry, late, NOW)  # the timer read the document: now it follows
    assert [e.due_at for e in await agenda.due(NOW + HORIZON, 10)] == [late]


async def test_a_sweep_enters_keys_without_an_entry_and_brings_late_entries_forward_at_most_to_now(db):
    agenda = await agenda_of(db)
    sooner = NOW + timedelta(minutes=5)
    await agenda.schedule("t1", "p1", sooner)  # brought forward after the sweep read the collection
    await agenda.schedule("t1", "p3", NOW + timedelta(hours=6))  # settled from a read just before p3 became due
    await agenda.schedule("t1", "p4", NOW + timedelta(hours=6))
    assert await agenda.sweep_needed(NOW)
    found = [("t1", "p1", NOW + timedelta(hours=3)), ("t1", "p2", NOW + timedelta(hours=3)),
             ("t1", "p3", NOW - timedelta(minutes=1)), ("t1", "p4", NOW + timedelta(hours=2))]
    assert await agenda.swept(found, NOW) == 3  # p2 entered, p3 and p4 brought forward
    # p4's read may be older than the write that moved its entry: due now, the timer reads and settles it.
    assert sorted((e.key, e.due_at) for e in await agenda.due(NOW + HORIZON, 10)) == [
        ("p1", sooner), ("p2", NOW + timedelta(hours=3)), ("p3", NOW - timedelta(minutes=1)), ("p4", NOW)]


async def test_every_process_answers_a_sweep_request_and_a_request_made_mid_sweep_is_answered_next(db):
    agenda, other = await agenda_of(db), await agenda_of(db)  # two timer processes
    for timer in (agenda, other):
        assert await timer.sweep_needed(NOW)
        await timer.swept([], NOW)
        assert not await timer.sweep_needed(NOW)
    await Agenda(db["agenda"], clock=lambda: NOW).sweep_soon()  # the CLI, after its write
    assert await agenda.sweep_needed(NOW)
    await Agenda(db["agenda"], clock=lambda: NOW).sweep_soon()  # another request while the sweep reads
    await agenda.swept([], NOW)
    assert await agenda.sweep_needed(NOW)  # that one came after the read: answered by the next sweep
    await agenda.swept([], NOW)
    assert not await agenda.sweep_needed(NOW)
    assert await other.sweep_needed(NOW)  # the other process sweeps too, after its own settles
    await other.swept([], NOW)
    assert not await other.sweep_needed(NOW)
    # A process that starts sweeps once, whatever the markers say (its policies may have changed).
    assert await Agenda(db["agenda"], clock=lambda: NOW).sweep_needed(NOW)


async def test_a_worker_sweeps_when_it_gains_a_partition_not_when_it_loses_one(db):
    agenda, consumer = await agenda_of(db), Assignment()
    held = PartitionOwnership(consumer, "scores.changes", 8)

    def rebalance(*partitions: int) -> None:  # the broker's assignment, then Faust's signal of it
        consumer.partitions = set(partitions)
        held.assigned(None, {TP("scores.changes", p) for p in partitions} | {TP("other", 5)})

    assert not await agenda.sweep_needed(NOW, held.owned())  # not in its group yet: it waits for partitions
    rebalance(0, 1)
    assert await agenda.sweep_needed(NOW, held.owned())
    await agenda.swept([], NOW)
    assert not await agenda.sweep_needed(NOW, held.owned())
    rebalance(0)  # a rebalance took partition 1
    assert not await agenda.sweep_needed(NOW, held.owned())
    # Partition 1 comes back: its worker meanwhile may have died between a read and a settle.
    rebalance(0, 1)
    assert await agenda.sweep_needed(NOW, held.owned())
    await agenda.swept([], NOW)
    assert not await agenda.sweep_needed(NOW, held.owned())
    # Lost and won back between two timer runs: the timer never sees it gone, the rebalances count it.
    rebalance(0)
    rebalance(0, 1)
    assert await agenda.sweep_needed(NOW, held.owned())
    await agenda.swept([], NOW)
    # The consumer may show a rebalance's partitions before the signal comes: a gain all the same, once.
    consumer.partitions = {0, 1, 2}  # a worker of two left: its partitions
    assert await agenda.sweep_needed(NOW, held.owned())
    await agenda.swept([], NOW)
    rebalance(0, 1, 2)
    assert not await agenda.sweep_needed(NOW, held.owned())


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class Assignment:
    """The consumer's side of `PartitionOwnership`: what the broker assigned, as the timer reads it."""
    partitions: set[int] = field(default_factory=set)

    def topic_partitions(self, topic: str) -> int:
        return 8

    def assignment(self) -> set[TP]:
        return {TP("scores.changes", p) for p in self.partitions}
