"""API keys: who is calling (tenant, role, consultant) and what they may do.

Keys are kept only as SHA-256 digests in memory; a presented key is hashed and looked up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    INGEST = "ingest"
    CONSULTANT = "consultant"
    OPS = "ops"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    role: Role
    consultant_id: str | None = None
    key_digest: str = ""  # which key called: per-key limits count by it


class KeyFormatError(ValueError):
    pass


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_api_keys(spec: str) -> dict[str, Principal]:
    """Parse `key=tenant:role[:consultant_id],...` into {sha256(key): Principal}."""
    keys: dict[str, Principal] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, rest = item.partition("=")
        parts = rest.split(":")
        if not sep or len(key) < 8 or len(parts) not in (2, 3) or not parts[0]:
            raise KeyFormatError("each API key must look like key=tenant:role[:consultant_id], key ≥ 8 chars")
        try:
            role = Role(parts[1])
        except ValueError:
            raise KeyFormatError(f"unknown role {parts[1]!r}; roles: {', '.join(Role)}") from None
        keys[digest(key)] = Principal(parts[0], role, parts[2] if len(parts) == 3 and parts[2] else None, digest(key))
    return keys
