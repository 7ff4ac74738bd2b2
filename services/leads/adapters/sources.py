"""Source quality in the store. The only writer of
- `lead_sources`: verdict counts per tenant, source (channel, campaign or store) and hour;
- `lead_source_baselines`: per source, its decayed bad-rate baseline and the hour it is counting;
- `lead_alerts`: every alert raised, once per source and hour, and whether it was emitted.

Counting is `$inc`, made once per touchpoint by the timeline's `counted` flag (see the handler), in one
command that returns the hour's counts (findAndModify).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from leadflow.runtime.store import ensure_collections, insert_once
from schemas.leads import SourceAlerted, SourceCounts, Verdict
from services.leads.domain.source_quality import Alert, AlertPolicy, Baseline, Counts, bucket_of, check


T = TypeVar("T")
KNOWN_BASELINES = 50_000  # sources (channels, campaigns, stores) whose baseline a worker keeps in memory


def _counts(doc: dict[str, Any] | None) -> Counts:
    doc = doc or {}
    return Counts(valid=doc.get("valid", 0), suspect=doc.get("suspect", 0), junk=doc.get("junk", 0))


class SourceStats:
    def __init__(self, db: AsyncDatabase) -> None:
        self.buckets = db["lead_sources"]
        self.baselines = db["lead_source_baselines"]
        self.alerts = db["lead_alerts"]
        # Each source's baseline and the hour it counts, as last read or written: it changes only when a
        # later hour begins, so a touchpoint of the same hour needs no read. Another worker folding a
        # later hour first is found when this one sees that hour (the cached hour is older: it reads).
        self._known: dict[str, tuple[datetime, Baseline]] = {}

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.buckets, self.baselines, self.alerts)
        await self.buckets.create_index([("tenant_id", ASCENDING), ("bucket", DESCENDING)])
        await self.alerts.create_index([("tenant_id", ASCENDING), ("bucket", DESCENDING)])

    @staticmethod
    def _bucket_id(tenant_id: str, dimension: str, value: str, bucket: datetime) -> str:
        return f"{tenant_id}\x1f{dimension}\x1f{value}\x1f{bucket.isoformat()}"

    async def count(self, tenant_id: str, dimension: str, value: str, at: datetime, verdict: Verdict,
                    policy: AlertPolicy) -> Alert | None:
        """Count one touchpoint's verdict; the alert this raises (once per source and hour), if any."""
        bucket = bucket_of(at)
        bucket_id = self._bucket_id(tenant_id, dimension, value, bucket)
        update = {"$inc": {verdict.value: 1},
                  "$set": {"tenant_id": tenant_id, "dimension": dimension, "value": value, "bucket": bucket}}
        counts = _counts(await _upsert(lambda: self.buckets.find_one_and_update(
            {"_id": bucket_id}, update, upsert=True, return_document=ReturnDocument.AFTER)))
        baseline = await self._baseline(tenant_id, dimension, value, bucket, policy)
        alert = check(dimension, value, bucket, counts, baseline, policy)
        if alert is None:
            return None
        await insert_once(self.alerts, {
            "_id": f"{tenant_id}\x1f{alert.alert_id}", "tenant_id": tenant_id, "dimension": dimension, "value": value,
            "bucket": bucket, "bad_rate": alert.bad_rate, "baseline": alert.baseline, "reason": alert.reason,
            "valid": counts.valid, "suspect": counts.suspect, "junk": counts.junk, "emitted": False,
        })
        known = await self.alerts.find_one({"_id": f"{tenant_id}\x1f{alert.alert_id}"})
        return None if known and known.get("emitted") else alert

    async def emitted(self, tenant_id: str, alert: Alert) -> None:
        await self.alerts.update_one({"_id": f"{tenant_id}\x1f{alert.alert_id}"}, {"$set": {"emitted": True}})

    async def _baseline(self, tenant_id: str, dimension: str, value: str, bucket: datetime,
                        policy: AlertPolicy) -> Baseline:
        """The source's baseline, with the hour it was counting folded in once a later hour begins."""
        doc_id = f"{tenant_id}\x1f{dimension}\x1f{value}"
        known = self._known.get(doc_id)
        if known is not None and known[0] >= bucket:
            return known[1]  # the hour it counts has not ended: the baseline has not changed
        doc = await self.baselines.find_one({"_id": doc_id}) or {}
        baseline = Baseline(rate=doc.get("rate"), volume=doc.get("volume", 0.0), through=doc.get("through"))
        current = doc.get("current")
        if current is not None and current >= bucket:
            self._remember(doc_id, current, baseline)
            return baseline
        if current is not None:
            closed = _counts(await self.buckets.find_one({"_id": self._bucket_id(tenant_id, dimension, value, current)}))
            baseline = baseline.fold(current, closed, policy)
        body = {"tenant_id": tenant_id, "dimension": dimension, "value": value, "rate": baseline.rate,
                "volume": baseline.volume, "through": baseline.through, "current": bucket}
        await _upsert(lambda: self.baselines.replace_one({"_id": doc_id}, body, upsert=True))
        self._remember(doc_id, bucket, baseline)
        return baseline

    def _remember(self, doc_id: str, current: datetime, baseline: Baseline) -> None:
        if len(self._known) >= KNOWN_BASELINES:
            self._known.clear()  # many sources: start over rather than grow
        self._known[doc_id] = (current, baseline)

    # ---- reads -----------------------------------------------------------------------------------
    async def rows(self, tenant_id: str, since: datetime) -> list[tuple[str, str, datetime, Counts]]:
        cursor = self.buckets.find({"tenant_id": tenant_id, "bucket": {"$gte": bucket_of(since)}})
        return [(d["dimension"], d["value"], d["bucket"], _counts(d)) async for d in cursor]

    async def baselines_of(self, tenant_id: str) -> dict[tuple[str, str], Baseline]:
        cursor = self.baselines.find({"tenant_id": tenant_id})
        return {(d["dimension"], d["value"]): Baseline(rate=d.get("rate"), volume=d.get("volume", 0.0),
                                                       through=d.get("through")) async for d in cursor}

    async def recent_alerts(self, tenant_id: str, since: datetime, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.alerts.find({"tenant_id": tenant_id, "bucket": {"$gte": bucket_of(since)}}, {"_id": 0, "emitted": 0})
        return [d async for d in cursor.sort("bucket", DESCENDING).limit(limit)]


async def _upsert(write: Callable[[], Awaitable[T]]) -> T:
    """Sources are shared by every leads worker: two may create a source's document at once. FerretDB does
    not retry an upsert that lost that race, as MongoDB does; the document exists now, so once more updates."""
    try:
        return await write()
    except DuplicateKeyError:
        return await write()


def alert_event(tenant_id: str, alert: Alert, raised_at: datetime) -> SourceAlerted:
    c = alert.counts
    return SourceAlerted(
        alert_id=alert.alert_id.replace("\x1f", ":"), tenant_id=tenant_id, dimension=alert.dimension, value=alert.value,
        bucket=alert.bucket, counts=SourceCounts(valid=c.valid, suspect=c.suspect, junk=c.junk),
        bad_rate=round(alert.bad_rate, 4), baseline=round(alert.baseline, 4), reason=alert.reason, raised_at=raised_at,
    )
