"""Keyed hashes and ids: identifiers are matched by HMAC-SHA256 with a per-tenant key, never by value."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from services.identity.domain.normalize import NormalizedIdentifier

_ONE_ID_NAMESPACE = uuid.UUID("6f1c3a52-4d1e-4b7e-9a55-0c1e2d3f4a5b")


def tenant_key(master_secret: bytes, tenant_id: str) -> bytes:
    """Derive the tenant's own HMAC key, so one tenant's hashes say nothing about another's."""
    return hmac.new(master_secret, f"tenant:{tenant_id}".encode(), hashlib.sha256).digest()


def identifier_hash(tenant_secret: bytes, identifier: NormalizedIdentifier) -> str:
    return hmac.new(tenant_secret, identifier.identity_key.encode(), hashlib.sha256).hexdigest()


def new_one_id(tenant_id: str, event_id: str) -> str:
    """The one_id a person gets when `event_id` is the first we see of them (stable under replay)."""
    return str(uuid.uuid5(_ONE_ID_NAMESPACE, f"{tenant_id}\x1f{event_id}"))


def merge_id(tenant_id: str, winner: str, loser: str) -> str:
    return str(uuid.uuid5(_ONE_ID_NAMESPACE, f"merge\x1f{tenant_id}\x1f{winner}\x1f{loser}"))
