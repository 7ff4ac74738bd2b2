"""The person guard against the real store: two workers changing one person's document at once lose
nothing while they hold its lease, and do lose changes when each trusts its own lock alone (the reason
downstream services take leases once they run as several workers). A person merged into another is
guarded with the one they live on as."""

from __future__ import annotations

import asyncio

from leadflow.runtime.leases import PersonGuard, PersonLeases
from leadflow.runtime.persons import follow


class People:
    """A person's document with a counter, changed by a read, a pause and a write (as every service does)."""

    def __init__(self, db) -> None:
        self.docs = db["guard_people"]

    async def resolve(self, tenant: str, one_id: str):
        return await follow(one_id, lambda o: self.docs.find_one({"_id": f"{tenant}:{o}"}),
                            lambda doc: doc.get("merged_into"))

    async def bump(self, tenant: str, one_id: str) -> None:
        target, doc = await self.resolve(tenant, one_id)
        await asyncio.sleep(0.005)  # the domain deciding: another writer gets in here without a lease
        await self.docs.replace_one({"_id": f"{tenant}:{target}"}, {"n": (doc or {}).get("n", 0) + 1}, upsert=True)


def workers(db, people: People, *, shared: bool) -> list[PersonGuard]:
    guards = [PersonGuard(PersonLeases(db, collection="guard_leases", wait_s=30), people.resolve) for _ in range(2)]
    for guard in guards:
        guard.sole = lambda: not shared
    return guards


async def run(guards: list[PersonGuard], people: People, one_ids: list[str], rounds: int) -> None:
    async def worker(guard: PersonGuard, one_id: str) -> None:
        for _ in range(rounds):
            async with guard.person("t", one_id):
                await people.bump("t", one_id)

    await asyncio.gather(*(worker(g, o) for g, o in zip(guards, one_ids, strict=True)))


async def test_two_workers_under_leases_lose_no_change(db):
    people = People(db)
    await people.docs.insert_one({"_id": "t:p", "n": 0})
    await run(workers(db, people, shared=True), people, ["p", "p"], rounds=25)
    assert (await people.docs.find_one({"_id": "t:p"}))["n"] == 50
    assert await db["guard_leases"].count_documents({}) == 0  # every lease given back


async def test_two_workers_trusting_their_own_lock_lose_changes(db):
    people = People(db)
    await people.docs.insert_one({"_id": "t:p", "n": 0})
    await run(workers(db, people, shared=False), people, ["p", "p"], rounds=25)
    assert (await people.docs.find_one({"_id": "t:p"}))["n"] < 50


async def test_a_merged_persons_change_holds_the_lease_of_whom_they_live_on_as(db):
    people = People(db)
    await people.docs.insert_many([{"_id": "t:loser", "merged_into": "winner"}, {"_id": "t:winner", "n": 0}])
    # One worker changes the loser (a late record of theirs), the other the winner (its own partition):
    # both write the winner's document.
    await run(workers(db, people, shared=True), people, ["loser", "winner"], rounds=25)
    assert (await people.docs.find_one({"_id": "t:winner"}))["n"] == 50
    assert await db["guard_leases"].count_documents({}) == 0


async def test_a_lease_held_elsewhere_makes_the_change_wait(db):
    people = People(db)
    first, second = workers(db, people, shared=True)
    order = []

    async def holder() -> None:
        async with first.person("t", "p"):
            order.append("first in")
            await asyncio.sleep(0.3)
            order.append("first out")

    async def waiter() -> None:
        await asyncio.sleep(0.05)
        async with second.person("t", "p"):
            order.append("second in")

    await asyncio.gather(holder(), waiter())
    assert order == ["first in", "first out", "second in"]


async def test_a_change_that_also_needs_a_person_it_holds_does_not_wait_for_itself(db):
    people = People(db)
    await people.docs.insert_one({"_id": "t:loser", "merged_into": "winner"})
    guard, _ = workers(db, people, shared=True)
    async with guard.person("t", "loser"):  # holds the loser's and the winner's leases
        async with asyncio.timeout(2):  # a lease taken twice would wait for its own 30 s term
            async with guard.also("t", "winner"), guard.also("t", "loser", "referrer"):
                assert await db["guard_leases"].count_documents({}) == 3
        assert await db["guard_leases"].count_documents({}) == 2
    assert await db["guard_leases"].count_documents({}) == 0
