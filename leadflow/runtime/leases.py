"""Per-person leases, and the guard every service that writes persons' documents holds while it does.

Why leases: a service's records are spread over its workers by partition, and each person's records
go to one partition, so one worker writes each person's documents. Not always:
- identity's input is not keyed by person: two workers adding a third and a fourth phone to one
  person would each see two (identity takes leases for every change to who holds which identifiers);
- downstream (leads, scoring, notify), a merge folds the loser into the winner, whose partitions may
  belong to different workers, and a record of a merged person, or a referral's credit, writes the
  person it resolves to. FerretDB v1 runs an update as a read and a write without a transaction, so two
  workers there would lose one of the two changes.
So a worker that is about to change a person takes the person's lease first, and re-reads under it.

A lease is a document `_id` = tenant + one_id, inserted once (the compare-and-set) and deleted on
release. A crashed worker's lease expires after `lease_s`; the next worker deletes it by its token
(a filter on more than `_id`, which FerretDB v1 answers with a scan, cheap here because only held
leases exist). The leases of one call are taken in sorted order, so two such calls never wait on each
other in a cycle; a change that takes more later (`PersonGuard.also`, `exclusive`) can, until one side's
wait runs out (`LeaseTimeout`, retried like any transient failure).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.errors import RetryLater
from leadflow.runtime.store import ensure_collections, insert_once


class LeaseTimeout(RetryLater):
    """Somebody held a person's lease longer than we were willing to wait: plan again later."""


class PersonLeases:
    def __init__(self, db: AsyncDatabase, *, collection: str = "identity_leases", lease_s: float = 30.0,
                 wait_s: float = 10.0) -> None:
        self.leases = db[collection]
        self.lease_s = lease_s
        self.wait_s = wait_s

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.leases)

    @asynccontextmanager
    async def held(self, tenant_id: str, one_ids: Iterable[str]) -> AsyncIterator[None]:
        token = uuid.uuid4().hex
        taken: list[str] = []
        try:
            for one_id in sorted(set(one_ids)):
                key = f"{tenant_id}\x1f{one_id}"
                await self._take(key, token)
                taken.append(key)
            yield
        finally:
            for key in taken:
                await self.leases.delete_one({"_id": key, "token": token})

    async def _take(self, key: str, token: str) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            now = time.time()
            if await insert_once(self.leases, {"_id": key, "token": token, "until": now + self.lease_s}):
                return
            holder = await self.leases.find_one({"_id": key})
            if holder is not None and holder["until"] < now:
                await self.leases.delete_one({"_id": key, "token": holder["token"]})  # expired: its worker died
                continue
            if time.monotonic() > deadline:
                raise LeaseTimeout(key.split("\x1f", 1)[-1])
            await asyncio.sleep(random.uniform(0.002, 0.02))


Resolve = Callable[[str, str], Awaitable[tuple[str, object]]]
MAX_RESOLVES = 5  # a person merged again while we wait for their lease: look again, a few times


def alone() -> bool:
    """A worker that owns every partition (or a test without a broker): nobody else writes its persons."""
    return True


class PersonGuard:
    """One change at a time in a worker (its agents and timers share the documents), and, while the
    service runs as several workers, the leases of the persons a change writes.

    `sole()` says whether this worker owns every partition of the service's input right now (set by the
    entrypoint from the consumer's assignment). Alone, the lock is enough and leases cost nothing; with
    several workers each change costs a lease taken and given back (two store commands)."""

    def __init__(self, leases: PersonLeases, resolve: Resolve) -> None:
        self.leases = leases
        self.resolve = resolve
        self.sole: Callable[[], bool] = alone
        self._lock = asyncio.Lock()
        self._held: set[tuple[str, str]] = set()  # (tenant, one_id) whose leases the current change holds

    async def ensure_indexes(self) -> None:
        await self.leases.ensure_indexes()

    @asynccontextmanager
    async def person(self, tenant_id: str, *one_ids: str) -> AsyncIterator[None]:
        """Hold the lock, and the leases of these persons and of whom they live on as (following merges)."""
        async with self._lock, self.also(tenant_id, *one_ids):
            yield

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """The lock alone: a timer's run, which takes `also` for each person it changes."""
        async with self._lock:
            yield

    @asynccontextmanager
    async def exclusive(self, tenant_id: str, key: str) -> AsyncIterator[None]:
        """Inside `person`: the lease of a document every worker may change, not a person's (a source's
        counts, a device's submissions). FerretDB v1 applies even `$inc` as a read and a write, so two
        workers counting at once lose counts without it."""
        if self.sole() or (tenant_id, key) in self._held:
            yield
            return
        async with self.leases.held(tenant_id, [key]):
            yield

    @asynccontextmanager
    async def also(self, tenant_id: str, *one_ids: str) -> AsyncIterator[None]:
        """Inside `person` or `locked`: the leases of more persons (a referrer; a timer's next person) and
        of whom they live on as. Re-read what they hold under it. Two workers taking them in different
        orders wait for each other until one's wait runs out (`LeaseTimeout`, retried): rare, and never a
        lost change."""
        if self.sole():
            yield
            return
        wanted = set(one_ids)
        for _ in range(MAX_RESOLVES):
            # Leases this change holds already (a referrer who is the person themselves) are not taken
            # twice: a lease is a document, and waiting for our own would wait for ever.
            taking = {o for o in wanted if (tenant_id, o) not in self._held}
            async with self.leases.held(tenant_id, taking):
                self._held |= {(tenant_id, o) for o in taking}
                try:
                    targets = {(await self.resolve(tenant_id, one_id))[0] for one_id in one_ids}
                    if all(t in wanted or (tenant_id, t) in self._held for t in targets):
                        yield
                        return
                finally:
                    self._held -= {(tenant_id, o) for o in taking}
            wanted |= targets  # merged elsewhere meanwhile: take those too, all in sorted order
        raise LeaseTimeout(f"persons kept moving: {sorted(wanted)}")
