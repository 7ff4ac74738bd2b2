"""A timer's agenda: the keys a service's timer must look at soon, so that finding them does not decode
the service's whole collection.

Why: FerretDB v1 pushes only a filter that is exactly `{_id: x}` down to SQLite; a timer asking its
collection "who is due?" decodes every document of it in Go, 380-490 microseconds per lead or score
document (measured, docs/benchmarks.md). Every 30 seconds that cost grows with the data: a timer's
scan of 2,000 persons took 0.8-1 s of the store's CPU, of 200,000 it would take longer than the
interval. On MongoDB an index on the due time answers the same question; the agenda serves both.

What it keeps, one small document per key, `{_id: "<tenant>\\x1f<key>", tenant_id, key, person,
due_at}`, only for keys due within the horizon (a day by default). `person` is whose partition the
key's changes go through, which decides the worker that acts on it (the key itself for a person's own
document). A key due later is not written when its document is saved; a sweep of the service's
collection, at most every half horizon (its time is kept here, under `SWEEP_ID`), enters the keys
whose time came within the horizon. So the agenda holds about a day's due keys, and the big
collection is read twice a day instead of 2,880 times.

An entry may be stale: its document moved its due time, was merged away or erased. The timer reads
the document by `_id`, acts only on what the document says and then `settle`s the entry. Entries are
written before the document they schedule, so a crash between the two leaves an early entry, never a
missing one. The owner of the collection (a repository) is this agenda's only writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from leadflow.runtime.store import ensure_collections

SWEEP_ID = "\x00sweep"  # no tenant id starts with NUL; has no due_at, so `due` never returns it
HORIZON = timedelta(days=1)


@dataclass(frozen=True)
class Entry:
    tenant_id: str
    key: str
    due_at: datetime
    person: str = ""

    @property
    def owner(self) -> str:
        """The key its worker is found by (`leadflow/runtime/ownership.py`)."""
        return self.person or self.key


def entry_id(tenant_id: str, key: str) -> str:
    return f"{tenant_id}\x1f{key}"


class Agenda:
    def __init__(self, collection: AsyncCollection, *, horizon: timedelta = HORIZON,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.collection = collection
        self.horizon = horizon
        self.clock = clock

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.collection)
        await self.collection.create_index([("due_at", ASCENDING)])
        await self.collection.create_index([("tenant_id", ASCENDING), ("person", ASCENDING)])

    def holds(self, due: datetime | None, now: datetime | None = None) -> bool:
        """Whether a key due at `due` belongs in the agenda. The wall clock's horizon is the one the sweeps
        keep; a timer's `now` (a test's clock) may reach further."""
        clock = self.clock()
        return due is not None and due <= max(now or clock, clock) + self.horizon

    async def schedule(self, tenant_id: str, key: str, due: datetime | None, *, person: str | None = None,
                       entered: datetime | None = None) -> None:
        """Before saving a document due at `due`: enter its key if due within the horizon. A key due later
        or never is left as it is: a stale entry costs the timer one read, and the sweep enters it later.
        `entered`: the due time of the key's entry, when the caller knows one is kept (the document's
        previous due time, within the horizon when it was saved). An entry due no later than `due`
        brings the timer in time, and the timer then moves it (`settle`), so it is not written again:
        a person active every few minutes costs one entry write, not one per touchpoint."""
        if self.holds(due) and not (entered is not None and due is not None and entered <= due):
            await self._put(tenant_id, key, due, person)

    async def settle(self, entry: Entry, due: datetime | None, now: datetime) -> None:
        """After the timer looked at the entry's document: the entry follows the document's due time."""
        if not self.holds(due, now):
            await self.drop(entry.tenant_id, entry.key)
        elif due != entry.due_at:
            await self._put(entry.tenant_id, entry.key, due, entry.person or None)

    async def due(self, now: datetime, limit: int) -> list[Entry]:
        """Entries whose time came (every tenant: the timer is the service's, not a tenant's)."""
        cursor = self.collection.find({"due_at": {"$lte": now}}).limit(limit)
        return [Entry(doc["tenant_id"], doc["key"], doc["due_at"], doc.get("person") or "") async for doc in cursor]

    async def drop(self, tenant_id: str, key: str) -> None:
        await self.collection.delete_one({"_id": entry_id(tenant_id, key)})

    async def forget(self, tenant_id: str, persons: list[str]) -> None:
        """Drop every entry of these persons (an erasure: keys that are not the person, as a task's, would
        otherwise keep naming them until their time came). It scans the agenda, which is small."""
        await self.collection.delete_many({"tenant_id": tenant_id, "person": {"$in": persons}})

    # ---- the sweep -------------------------------------------------------------------------------
    async def sweep_needed(self, now: datetime) -> bool:
        marker = await self.collection.find_one({"_id": SWEEP_ID})
        return marker is None or not (now - self.horizon / 2 < marker["swept_at"] <= now)

    async def swept(self, due: Iterable[tuple[str, str, datetime] | tuple[str, str, datetime, str]], now: datetime) -> int:
        """Enter what a sweep found due up to `now` + horizon, (tenant, key, due[, person]) each, then note
        the sweep; how many were entered."""
        entered = 0
        for tenant_id, key, at, *person in due:
            if self.holds(at, now):
                await self._put(tenant_id, key, at, person[0] if person else None)
                entered += 1
        await self._replace(SWEEP_ID, {"swept_at": now})
        return entered

    async def sweep_soon(self) -> None:
        """Make the next timer run sweep: many documents were made due at once (a tenant's re-score)."""
        await self.collection.delete_one({"_id": SWEEP_ID})

    async def _put(self, tenant_id: str, key: str, due: datetime, person: str | None = None) -> None:
        await self._replace(entry_id(tenant_id, key), {"tenant_id": tenant_id, "key": key, "person": person or key,
                                                       "due_at": due})

    async def _replace(self, doc_id: str, fields: dict) -> None:
        try:
            await self.collection.replace_one({"_id": doc_id}, fields, upsert=True)
        except DuplicateKeyError:
            # FerretDB v1: another worker's upsert of the same key won the race; the document exists now.
            await self.collection.replace_one({"_id": doc_id}, fields, upsert=True)
