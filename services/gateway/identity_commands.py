"""Ops commands to the identity service, and the audit of personal-data reveals.

Produces: identity.commands (the gateway is its only writer; identity carries the commands out).
Writes: audit_reveals (who saw which raw identifier of whom, when; the gateway is its only writer).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.store import ensure_collections
from leadflow.sdk import EventProducer
from schemas.base import Event
from schemas.topics import IDENTITY_COMMANDS

_COMMAND_NS = uuid.UUID("4c2b9e71-0d3a-4e6f-b8a5-7f1e2d9c3b60")


def command_id(tenant_id: str, idempotency_key: str | None) -> str:
    """A client retrying with the same Idempotency-Key gets the same command, carried out once."""
    if idempotency_key:
        return str(uuid.uuid5(_COMMAND_NS, f"{tenant_id}\x1f{idempotency_key}"))
    return str(uuid.uuid4())


class IdentityCommandClient:
    def __init__(self, producer: EventProducer, *, topic_prefix: str = "") -> None:
        self._producer = producer
        self._topic = IDENTITY_COMMANDS.qualified(topic_prefix)

    async def send(self, tenant_id: str, command: Event) -> None:
        """Publish with acks=all; returns once the command is durable (raises KafkaError otherwise)."""
        await asyncio.to_thread(self._producer.send_all, [(self._topic, tenant_id.encode(), command.to_bytes())])


class RevealAudit:
    def __init__(self, db: AsyncDatabase) -> None:
        self.reveals = db["audit_reveals"]

    async def ensure_indexes(self) -> None:
        await ensure_collections(self.reveals)
        await self.reveals.create_index([("tenant_id", ASCENDING), ("at", DESCENDING)])

    async def record(self, *, tenant_id: str, one_id: str, link_id: str, identifier_type: str, role: str,
                     consultant_id: str | None, reason: str, at: datetime) -> str:
        audit_id = str(uuid.uuid4())
        await self.reveals.insert_one({
            "_id": audit_id, "tenant_id": tenant_id, "one_id": one_id, "link_id": link_id,
            "type": identifier_type, "role": role, "consultant_id": consultant_id, "reason": reason, "at": at,
        })
        return audit_id

    async def list(self, tenant_id: str, limit: int) -> list[dict]:
        cursor = self.reveals.find({"tenant_id": tenant_id})
        return [doc async for doc in cursor.sort("at", DESCENDING).limit(limit)]
