"""What the leads service counts and flags across persons. The only writer of
- `lead_velocity`: per device (link id) or IP address (keyed hash), the form submissions it made, as
  (event id, event time) pairs: a sliding window over event time, so a replay (same event id) or a
  late record counts exactly once and where it belongs;
- `lead_bad_phones`: phones (link ids) a consultant reported as invalid numbers, tenant-wide.

Why not Faust windowed tables: their changelog is at-least-once, so a replay after a crash counts
a form twice; a set of event ids cannot.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections, insert_once

# More entries than any threshold needs: beyond this a device is brushing whatever the exact count.
ENTRIES_KEPT = 256


class Velocity:
    def __init__(self, db: AsyncDatabase, secret: bytes) -> None:
        self.docs = db["lead_velocity"]
        self._secret = secret

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.docs)

    def key(self, tenant_id: str, kind: str, value: str) -> str:
        """The document id. IP addresses are few enough to guess from a plain hash: keyed."""
        digest = hmac.new(self._secret, f"{tenant_id}\x1f{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{tenant_id}\x1f{kind}\x1f{digest}"

    async def record(self, tenant_id: str, kind: str, value: str, event_id: str, at: datetime,
                     window: timedelta) -> int:
        """Record one submission; how many this source made within `window` up to `at`, this one included."""
        doc_id = self.key(tenant_id, kind, value)
        doc = await self.docs.find_one({"_id": doc_id})
        entries = {e["e"]: e["t"] for e in (doc or {}).get("entries", [])}
        if event_id not in entries:
            entries[event_id] = at
            newest = max(entries.values())
            # Keep two windows: late records still find the submissions they came among.
            kept = sorted(((e, t) for e, t in entries.items() if t >= newest - 2 * window), key=lambda p: p[1])
            body = {"tenant_id": tenant_id, "kind": kind, "entries": [{"e": e, "t": t} for e, t in kept[-ENTRIES_KEPT:]]}
            await self.docs.replace_one({"_id": doc_id}, body, upsert=True)
        at = _aware(at)
        return sum(1 for t in entries.values() if at - window <= _aware(t) <= at)


class BadPhones:
    def __init__(self, db: AsyncDatabase) -> None:
        self.docs = db["lead_bad_phones"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.docs)

    async def mark(self, tenant_id: str, link_id: str, *, one_id: str, outcome_id: str, at: datetime) -> bool:
        return await insert_once(self.docs, {"_id": f"{tenant_id}\x1f{link_id}", "tenant_id": tenant_id,
                                             "link_id": link_id, "one_id": one_id, "outcome_id": outcome_id, "at": at})

    async def among(self, tenant_id: str, link_ids: Iterable[str]) -> set[str]:
        """Which of these phones were reported invalid (a look-up by _id each: few per touchpoint)."""
        return {link for link in dict.fromkeys(link_ids)
                if await self.docs.find_one({"_id": f"{tenant_id}\x1f{link}"}, {"_id": 1}) is not None}

    async def erase(self, tenant_id: str, one_ids: list[str]) -> None:
        await self.docs.delete_many({"tenant_id": tenant_id, "one_id": {"$in": one_ids}})


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)
