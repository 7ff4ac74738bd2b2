"""Deterministic stitching decisions: pure functions over who owns which identifier.

`plan` decides, for one touchpoint, which person it belongs to, which persons merge into that one,
which new identifiers are linked, and which identifiers are held back by a guardrail (and why).
The repository gathers what `plan` needs and carries its decision out; see handlers.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from schemas.touchpoints import IdentifierType, TouchpointReceived
from services.identity.domain.guardrails import blocked_reason
from services.identity.domain.normalize import InvalidIdentifier, NormalizedIdentifier, normalize
from services.identity.domain.policy import IdentityPolicy

_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True)
class Person:
    one_id: str
    created_at: datetime
    # How many identifiers of each type the person holds, and in all.
    counts: Mapping[str, int] = field(default_factory=lambda: _EMPTY, compare=False)

    @property
    def size(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Seen:
    """An identifier of the touchpoint as the store knows it."""

    key: str  # keyed hash: the link's id
    identifier: NormalizedIdentifier
    owner: str | None = None  # the living person it belongs to, if any
    quarantined: bool = False


@dataclass(frozen=True)
class Held:
    """An identifier a guardrail kept from linking, and which rule did."""

    seen: Seen
    reason: str


@dataclass(frozen=True)
class Plan:
    owner: str | None  # the living person the touchpoint belongs to; None: a new person
    kept: tuple[Seen, ...]  # the identifiers that count for this touchpoint, strongest first
    absorb: tuple[tuple[str, Seen], ...]  # (loser, the identifier that brought it) merged into owner
    link: tuple[Seen, ...]  # identifiers nobody owns, linked to owner
    held: tuple[Held, ...]  # identifiers a guardrail kept out

    @property
    def conflict(self) -> str | None:
        """The guardrail that held something back (quarantine alone is no new conflict)."""
        return next((h.reason for h in self.held if h.reason != "quarantined"), None)


@dataclass(frozen=True)
class PreparedIdentifiers:
    valid: tuple[NormalizedIdentifier, ...]
    rejected: tuple[tuple[str, str], ...] = field(default=())  # (type, reason)


def prepare(event: TouchpointReceived, policy: IdentityPolicy | None = None) -> PreparedIdentifiers:
    """Normalise every identifier; keep the valid ones once each and say why the others were refused."""
    valid: dict[str, NormalizedIdentifier] = {}
    rejected: list[tuple[str, str]] = []
    tenant_blocked = policy.blocked if policy else frozenset()
    for identifier in event.identifiers:
        try:
            normalized = normalize(identifier)
        except InvalidIdentifier as exc:
            rejected.append((identifier.type.value, exc.reason))
            continue
        reason = blocked_reason(normalized)
        if reason is None and (normalized.type, normalized.value) in tenant_blocked:
            reason = "blocked_by_tenant"
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


def _strength(seen: Seen, persons: Mapping[str, Person], policy: IdentityPolicy) -> tuple:
    """Sort key, strongest first: type priority; then identifiers of older persons, then new ones."""
    owner = persons.get(seen.owner) if seen.owner else None
    age = (0, owner.created_at.timestamp(), owner.one_id) if owner else (1, 0.0, "")
    return policy.rank(seen.identifier.type), age, seen.key


def violation(kept: Sequence[Seen], persons: Mapping[str, Person], policy: IdentityPolicy) -> str | None:
    """The guardrail that linking all of `kept` into one person would break, or None."""
    owners = sorted({s.owner for s in kept if s.owner})
    new = [s for s in kept if not s.owner]
    counts: Counter[str] = Counter()
    for one_id in owners:
        counts.update(persons[one_id].counts)
    counts.update(s.identifier.type.value for s in new)

    # Only growth counts: a person already over a lowered limit can still receive touchpoints.
    for kind in policy.priority:
        already = max((persons[o].counts.get(kind.value, 0) for o in owners), default=0)
        if counts[kind.value] > max(policy.limit(kind), already):
            return f"limit:{kind.value}"
    if len(owners) > 1:
        for kind in policy.exclusive:
            if sum(1 for o in owners if persons[o].counts.get(kind.value, 0)) > 1:
                return f"exclusive:{kind.value}"
        biggest = max(persons[o].size for o in owners)
        if sum(persons[o].size for o in owners) + len(new) > max(policy.max_identifiers, biggest):
            return "merge_size_cap"

    # A person present only through weak identifiers (a shared device, a family car) must not
    # receive a second identifier of a strong type it already has: that is how strangers get glued.
    parts: dict[str | None, set[IdentifierType]] = {}
    for s in kept:
        parts.setdefault(s.owner, set()).add(s.identifier.type)
    for owner, kinds in parts.items():
        if owner is None or not kinds <= policy.weak:
            continue
        holds = {k for k, n in persons[owner].counts.items() if n and IdentifierType(k) not in policy.weak}
        brought = {
            s.identifier.type.value for s in kept
            if s.owner != owner and s.identifier.type not in policy.weak
        } | {
            k for other in owners if other != owner
            for k, n in persons[other].counts.items() if n and IdentifierType(k) not in policy.weak
        }
        if holds & brought:
            return f"weak_link:{sorted(holds & brought)[0]}"
    return None


def merge_violation(a: Person, b: Person, policy: IdentityPolicy) -> str | None:
    """The guardrail merging two persons (with no touchpoint between them) would break, or None."""
    seen = [Seen(f"anchor:{p.one_id}", NormalizedIdentifier(policy.priority[0], p.one_id), p.one_id) for p in (a, b)]
    # The anchors stand for the persons; their own counts already hold every identifier they have.
    return violation(seen, {a.one_id: a, b.one_id: b}, policy)


def plan(seen: Sequence[Seen], persons: Mapping[str, Person], policy: IdentityPolicy) -> Plan:
    """Decide what one touchpoint does to the identity graph.

    Quarantined identifiers never link. While linking everything else would break a guardrail, the
    weakest identifier (by the tenant's priority, then key) is held back; what stays is linked into
    the oldest person among its owners, or into a new person when nobody owns any of it.
    """
    held = [Held(s, "quarantined") for s in seen if s.quarantined]
    kept = sorted((s for s in seen if not s.quarantined), key=lambda s: _strength(s, persons, policy))
    while kept and (reason := violation(kept, persons, policy)):
        held.append(Held(kept.pop(), reason))
    owners = [persons[o] for o in {s.owner for s in kept if s.owner}]
    if not owners:
        return Plan(None, tuple(kept), (), tuple(kept), tuple(held))
    winner, losers = split_winner(owners)
    absorb = tuple(
        (loser.one_id, next(s for s in kept if s.owner == loser.one_id)) for loser in losers
    )
    link = tuple(s for s in kept if not s.owner)
    return Plan(winner.one_id, tuple(kept), absorb, link, tuple(held))
