"""Per-person leases: whoever changes a person's identifiers, or plans on their counts, holds the lease.

Links and merges are race-free on their own (unique `_id`s). Guardrails are not: two workers adding
a third and a fourth phone to one person would each see two. So a worker that is about to change a
person takes the person's lease first, and re-reads under it.

A lease is a document `_id` = tenant + one_id, inserted once (the compare-and-set) and deleted on
release. A crashed worker's lease expires after `lease_s`; the next worker deletes it by its token
(a filter on more than `_id`, which FerretDB v1 answers with a scan, cheap here because only held
leases exist). Leases are taken in sorted order, so two workers never wait on each other in a cycle.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.errors import RetryLater
from leadflow.runtime.store import ensure_collections, insert_once


class LeaseTimeout(RetryLater):
    """Somebody held a person's lease longer than we were willing to wait: plan again later."""


class PersonLeases:
    def __init__(self, db: AsyncDatabase, *, lease_s: float = 30.0, wait_s: float = 10.0) -> None:
        self.leases = db["identity_leases"]
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
