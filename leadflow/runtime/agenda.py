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
missing one. An early entry costs the timer one read; a late one would be a missed deadline. So a
sweep also brings forward an entry that is later than what it read of the document: a timer may
have settled the entry from what it read just before a change that made the document due sooner (a
tenant's rescore request, which every timer process answers with a sweep of its own after its own
settles: `sweep_soon`). At most to the sweep's `now`: on FerretDB v1 that write is a read and a
whole-document write and may undo a concurrent one, and the entry is then still due at once; the
timer reads the document and settles the entry. The owner of the collection (a repository) is this
agenda's only writer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from leadflow.runtime.ownership import Held
from leadflow.runtime.store import ensure_collections, insert_all_once

# Markers: no tenant id starts with NUL, and they have no due_at, so `due` never returns them. Apart,
# because FerretDB v1 applies an update as a read and a write of the whole document: a request must
# not be lost to a sweep noting its time.
SWEEP_ID = "\x00sweep"  # when a sweep last ran
REQUEST_ID = "\x00request"  # the last sweep request, a fresh token each
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
        self._swept_here = False  # this process has not swept yet
        self._request_seen: str | None = None  # the request token the sweep under way answers
        self._request_answered: str | None = None  # ... and the one this process's last sweep answered
        self._gains_seen = 0  # the worker's partition gains the sweep under way covers
        self._gains_swept = 0  # ... and those its last sweep covered

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
        An entry already due earlier stays (`$min`): the timer then looks early and moves it (`settle`);
        moving it later here would lose the earlier time if the document's write never came.
        `entered`: the due time of the key's entry, when the caller knows one is kept (the document's
        previous due time, within the horizon when it was saved). An entry due no later than `due`
        brings the timer in time, so it is not written again: a person active every few minutes costs
        one entry write, not one per touchpoint."""
        if self.holds(due) and not (entered is not None and due is not None and entered <= due):
            await self._update(tenant_id, key, {"$set": {"tenant_id": tenant_id, "key": key, "person": person or key},
                                                "$min": {"due_at": due}})

    async def place(self, tenant_id: str, key: str, due: datetime | None, *, person: str, now: datetime) -> None:
        """Make the key's entry exactly `due` for `person`, or drop it if not due within the horizon (under
        the key's lease: a merge handing a task to another person's worker)."""
        if self.holds(due, now):
            await self._update(tenant_id, key, {"$set": {"tenant_id": tenant_id, "key": key, "person": person,
                                                         "due_at": due}})
        else:
            await self.drop(tenant_id, key)

    async def settle(self, entry: Entry, due: datetime | None, now: datetime) -> None:
        """After the timer looked at the entry's document (under its lease): the entry follows the
        document's due time exactly."""
        if not self.holds(due, now):
            await self.drop(entry.tenant_id, entry.key)
        elif _ms(due) != _ms(entry.due_at):
            await self.place(entry.tenant_id, entry.key, due, person=entry.owner, now=now)

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
    async def sweep_needed(self, now: datetime, held: Held | None = None) -> bool:
        """Whether this timer run sweeps: the first run of each process (its policies may have changed, or
        it is the first with an agenda), then every half horizon, after a `sweep_soon` that this process
        has not answered yet (each process answers every request itself, after its own settles that may
        have read a document before the request's write), and when the worker gained a partition since
        its last sweep (`held`: the worker that had it may have died between such a read and its settle).
        A worker that holds no partition yet (None: not partitioned, a process alone) acts on nothing and
        waits for them, so that starting up costs one sweep, not two."""
        if held is not None and not held.partitions:
            return False
        marker = await self.collection.find_one({"_id": SWEEP_ID}) or {}
        request = await self.collection.find_one({"_id": REQUEST_ID}) or {}
        self._request_seen = request.get("token")
        self._gains_seen = held.gains if held is not None else 0
        swept_at = marker.get("swept_at")
        return (not self._swept_here or swept_at is None or not (now - self.horizon / 2 < swept_at <= now)
                or self._request_seen != self._request_answered or self._gains_seen != self._gains_swept)

    async def swept(self, due: Iterable[tuple[str, str, datetime] | tuple[str, str, datetime, str]], now: datetime) -> int:
        """Enter what a sweep found due up to `now` + horizon, (tenant, key, due[, person]) each, then note
        the sweep; how many entries were entered or brought forward. Keys without an entry are inserted,
        in one command. A key's entry later than what the sweep found is brought forward to that time,
        or to `now` if that is still to come (`$min`): the timer then reads the document and settles
        the entry where the document says, under the key's lease. Never further, because what the sweep
        read may be older than a change made since, and because a write this undoes on FerretDB must
        still leave an entry due at once."""
        found = {entry_id(tenant_id, key): (tenant_id, key, at, person[0] if person else key)
                 for tenant_id, key, at, *person in due if self.holds(at, now)}
        docs = [{"_id": _id, "tenant_id": tenant_id, "key": key, "person": person, "due_at": at}
                for _id, (tenant_id, key, at, person) in found.items()]
        entered = await insert_all_once(self.collection, docs)
        if entered < len(docs):
            # The agenda is small (a day's keys): read whole, one command, rather than one per key.
            async for entry in self.collection.find({"due_at": {"$exists": True}}, {"due_at": 1}):
                hit = found.get(entry["_id"])
                if hit is not None and _ms(hit[2]) < _ms(entry["due_at"]):
                    await self.collection.update_one({"_id": entry["_id"]}, {"$min": {"due_at": min(hit[2], now)}})
                    entered += 1
        await self._update_doc(SWEEP_ID, {"$set": {"swept_at": now}})
        self._swept_here, self._request_answered, self._gains_swept = True, self._request_seen, self._gains_seen
        return entered

    async def sweep_soon(self) -> None:
        """Make the next timer run of every process sweep: many documents became due at once (a tenant's
        rescore request). Call it after the write that made them due. May run in another process than
        the timers' (the CLI). A fresh token rather than a count: of two requests racing, the one whose
        write survives came last, after both their writes."""
        await self._update_doc(REQUEST_ID, {"$set": {"token": uuid.uuid4().hex}})

    async def _update(self, tenant_id: str, key: str, update: dict) -> None:
        await self._update_doc(entry_id(tenant_id, key), update)

    async def _update_doc(self, doc_id: str, update: dict) -> None:
        try:
            await self.collection.update_one({"_id": doc_id}, update, upsert=True)
        except DuplicateKeyError:
            # FerretDB v1: another worker's upsert of the same key won the race; the document exists now.
            await self.collection.update_one({"_id": doc_id}, update, upsert=True)


def _ms(at: datetime | None) -> datetime | None:
    """BSON keeps milliseconds: a due time read back is compared at that precision."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000) if at is not None else None
