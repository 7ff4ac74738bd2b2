"""Identity guardrails per tenant: limits, priorities, blocked values, hub and merge-size caps.

Defaults follow what identity-resolution products converged on (per-type limits and priorities as in
Segment, refusing to glue identified persons through a weak id as in PostHog, a merge-size cap as in
Unomi). A TOML file overrides them per tenant:

    [default]
    max_identifiers = 1000
    hub_threshold = 5
    [default.limits]
    phone = 3

    [tenants.dealer-east.limits]
    phone = 2
    [tenants.dealer-east]
    blocked = ["phone:+8613912345678"]    # type:normalised value
    auto_merge = 0.95                     # probabilistic matching thresholds
    review = 0.8
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.touchpoints import IdentifierType as T

# Strongest first: when an event would break a guardrail, the weakest identifiers are dropped first.
DEFAULT_PRIORITY: tuple[T, ...] = (
    T.CRM_ID, T.MEMBER_ID, T.WECHAT_UNIONID, T.PHONE, T.EMAIL, T.WECHAT_OPENID, T.DOUYIN_ID, T.VIN, T.DEVICE_ID,
)
DEFAULT_LIMITS: Mapping[T, int] = MappingProxyType({
    T.CRM_ID: 1, T.MEMBER_ID: 1, T.WECHAT_UNIONID: 1, T.PHONE: 3, T.EMAIL: 3,
    T.WECHAT_OPENID: 10, T.DOUYIN_ID: 2, T.VIN: 5, T.DEVICE_ID: 10,
})
# Identifiers a person may share with others (a family car, a shared tablet): they can attach a
# person's first identifier of a strong type, but never glue two persons who each have one.
DEFAULT_WEAK: frozenset[T] = frozenset({T.DEVICE_ID, T.VIN})
# Two persons holding different identifiers of these types are never merged automatically.
DEFAULT_EXCLUSIVE: frozenset[T] = frozenset({T.CRM_ID, T.MEMBER_ID})


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class IdentityPolicy:
    limits: Mapping[T, int] = field(default_factory=lambda: DEFAULT_LIMITS)
    priority: tuple[T, ...] = DEFAULT_PRIORITY
    weak: frozenset[T] = DEFAULT_WEAK
    exclusive: frozenset[T] = DEFAULT_EXCLUSIVE
    # A merge that would leave a person with more identifiers than this is refused.
    max_identifiers: int = 1000
    # An identifier seen with this many distinct persons it could not join is quarantined: a hub.
    hub_threshold: int = 5
    # Extra junk values of this tenant, as (type, normalised value).
    blocked: frozenset[tuple[T, str]] = field(default_factory=frozenset)
    # Probabilistic matching of persons who share no identifier (domain/matching.py): a score at or
    # above `auto_merge` merges, at or above `review` queues the pair for a human.
    matching: bool = True
    auto_merge: float = 0.92
    review: float = 0.5

    def __post_init__(self) -> None:
        if set(self.priority) != set(T):
            raise PolicyError("priority must name every identifier type exactly once")
        if any(n < 1 for n in self.limits.values()):
            raise PolicyError("limits must be at least 1")
        if self.max_identifiers < 2 or self.hub_threshold < 2:
            raise PolicyError("max_identifiers and hub_threshold must be at least 2")
        if not 0 < self.review <= self.auto_merge <= 1:
            raise PolicyError("need 0 < review <= auto_merge <= 1")

    def limit(self, kind: T) -> int:
        return self.limits.get(kind, self.max_identifiers)

    def rank(self, kind: T) -> int:
        return self.priority.index(kind)


@dataclass(frozen=True)
class PolicyBook:
    """The default policy and the tenants that override it."""

    default: IdentityPolicy = field(default_factory=IdentityPolicy)
    tenants: Mapping[str, IdentityPolicy] = field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> IdentityPolicy:
        return self.tenants.get(tenant_id, self.default)


def _apply(base: IdentityPolicy, table: Mapping[str, Any], where: str) -> IdentityPolicy:
    unknown = set(table) - {"limits", "priority", "weak", "exclusive", "max_identifiers", "hub_threshold", "blocked",
                            "matching", "auto_merge", "review"}
    if unknown:
        raise PolicyError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        changes: dict[str, Any] = {}
        if "limits" in table:
            changes["limits"] = MappingProxyType({**base.limits, **{T(k): int(v) for k, v in table["limits"].items()}})
        if "priority" in table:
            changes["priority"] = tuple(T(k) for k in table["priority"])
        for name in ("weak", "exclusive"):
            if name in table:
                changes[name] = frozenset(T(k) for k in table[name])
        for name in ("max_identifiers", "hub_threshold"):
            if name in table:
                changes[name] = int(table[name])
        for name in ("auto_merge", "review"):
            if name in table:
                changes[name] = float(table[name])
        if "matching" in table:
            changes["matching"] = bool(table["matching"])
        if "blocked" in table:
            pairs = [str(item).split(":", 1) for item in table["blocked"]]
            changes["blocked"] = frozenset((T(kind), value) for kind, value in pairs)
        return replace(base, **changes)
    except (ValueError, TypeError) as exc:
        raise PolicyError(f"{where}: {exc}") from None


def load_policies(path: Path | None) -> PolicyBook:
    """Read the TOML policy file; no file means the defaults for everybody."""
    if path is None:
        return PolicyBook()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    default = _apply(IdentityPolicy(), data.get("default", {}), "default")
    tenants = {name: _apply(default, table, f"tenants.{name}") for name, table in data.get("tenants", {}).items()}
    return PolicyBook(default, MappingProxyType(tenants))
