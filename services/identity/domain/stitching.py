"""Deterministic stitching decisions: pure functions over who owns which identifier."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas.touchpoints import TouchpointReceived
from services.identity.domain.guardrails import blocked_reason
from services.identity.domain.normalize import InvalidIdentifier, NormalizedIdentifier, normalize


@dataclass(frozen=True)
class Person:
    one_id: str
    created_at: datetime


@dataclass(frozen=True)
class PreparedIdentifiers:
    valid: tuple[NormalizedIdentifier, ...]
    rejected: tuple[tuple[str, str], ...] = field(default=())  # (type, reason)


def prepare(event: TouchpointReceived) -> PreparedIdentifiers:
    """Normalise every identifier; keep the valid ones once each and say why the others were refused."""
    valid: dict[str, NormalizedIdentifier] = {}
    rejected: list[tuple[str, str]] = []
    for identifier in event.identifiers:
        try:
            normalized = normalize(identifier)
        except InvalidIdentifier as exc:
            rejected.append((identifier.type.value, exc.reason))
            continue
        reason = blocked_reason(normalized)
        if reason:
            rejected.append((identifier.type.value, reason))
        else:
            valid.setdefault(normalized.identity_key, normalized)
    return PreparedIdentifiers(tuple(valid.values()), tuple(rejected))


def oldest_first(persons: Iterable[Person]) -> list[Person]:
    """The survivor of a merge is the oldest person; one_id breaks ties, so every worker agrees."""
    return sorted({p.one_id: p for p in persons}.values(), key=lambda p: (p.created_at, p.one_id))


def split_winner(persons: Sequence[Person]) -> tuple[Person, list[Person]]:
    ordered = oldest_first(persons)
    return ordered[0], ordered[1:]
