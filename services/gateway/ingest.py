"""Ingest use case: validate touchpoints, drop duplicates, publish to touchpoints.raw with acks=all.

Order: publish first, then record the receipt. A crash in between only means a retry publishes the
event again, which identity recognises by its event_id; the reverse order could lose it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from leadflow.sdk import Publisher
from schemas.touchpoints import TouchpointReceived
from services.gateway.receipts import ReceiptRepository


@dataclass
class EventResult:
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


def field_errors(exc: ValidationError, prefix: tuple) -> list[dict[str, Any]]:
    """Field paths, messages and types; never the input (it may be a phone number)."""
    return [
        {"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_input=False, include_url=False)
    ]


class IngestService:
    def __init__(self, receipts: ReceiptRepository, publisher: Publisher, *, clock: Callable[[], datetime]) -> None:
        self.receipts = receipts
        self.publisher = publisher
        self._clock = clock

    async def ingest(self, tenant_id: str, items: list[Any], *, batch: bool) -> list[EventResult]:
        results: list[EventResult] = []
        candidates: list[tuple[EventResult, TouchpointReceived]] = []
        seen: set[str] = set()
        for index, raw in enumerate(items):
            prefix = ("events", index) if batch else ()
            if isinstance(raw, dict) and "tenant_id" not in raw:
                raw = {**raw, "tenant_id": tenant_id}
            try:
                event = TouchpointReceived.model_validate(raw)
            except ValidationError as exc:
                results.append(EventResult(index, "rejected", _event_id(raw), field_errors(exc, prefix)))
                continue
            if event.tenant_id != tenant_id:
                results.append(EventResult(index, "rejected", event.event_id, [
                    {"loc": [*prefix, "tenant_id"], "msg": "tenant_id does not match the API key's tenant",
                     "type": "tenant_mismatch"}]))
                continue
            result = EventResult(index, "duplicate" if event.event_id in seen else "accepted", event.event_id)
            seen.add(event.event_id)
            results.append(result)
            if result.status == "accepted":
                candidates.append((result, event))

        already = await self.receipts.existing(tenant_id, [e.event_id for _, e in candidates])
        fresh = []
        for result, event in candidates:
            if event.event_id in already:
                result.status = "duplicate"
            else:
                fresh.append(event)
        if fresh:
            await asyncio.to_thread(self.publisher.publish_many, fresh)
            await self.receipts.record(tenant_id, [e.event_id for e in fresh], self._clock())
        return results


def _event_id(raw: Any) -> str | None:
    value = raw.get("event_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None
