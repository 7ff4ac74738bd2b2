"""Who gets a follow-up task: routing rules per tenant, owner affinity, capacity and availability, a fair
rotation weighted by each consultant's conversion, and the store manager's queue when nobody can take it.
Every assignment says which rule chose the consultant and why, in words a manager reads.

Pure: consultants, the lead and `today` (the tenant's local date) are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas.leads import LeadSnapshot
from services.notify.domain.keys import check_keys


class RoutingError(ValueError):
    """A routing policy that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Consultant:
    consultant_id: str
    store_id: str
    active: bool = True
    capacity: int = 50
    open_tasks: int = 0
    region: str | None = None
    products: frozenset[str] = frozenset()  # brands or product lines they sell; empty: all
    skills: frozenset[str] = frozenset()
    on_duty: bool = True  # 在岗: off duty takes no new task, whatever the hours
    leave: frozenset[date] = frozenset()  # local dates on leave
    manager: bool = False  # the store's manager: gets escalations and the store's fallback queue
    conversion: float | None = None  # recent conversion rate, for a performance-weighted rotation
    assigned: int = 0  # tasks assigned in the current rotation period (the fairness counter)

    def available(self, today: date) -> bool:
        return self.active and self.on_duty and today not in self.leave and self.open_tasks < self.capacity


class Strategy(StrEnum):
    LEAST_LOADED = "least_loaded"  # the lowest open tasks / capacity
    ROTATION = "rotation"  # the fewest assigned this period, weighted by conversion when asked


class Scope(StrEnum):
    STORE = "store"  # consultants of the lead's store
    REGION = "region"  # consultants of the stores in the lead's store's region
    TENANT = "tenant"  # everybody


@dataclass(frozen=True)
class Rule:
    """When a lead matches (`stores`, `regions`, `products`, `grades`, empty: any), it goes to an available
    consultant in `scope` who has every skill in `skills` and sells its product (if they list products)."""

    name: str
    scope: Scope = Scope.STORE
    stores: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    grades: frozenset[str] = frozenset()
    skills: frozenset[str] = frozenset()

    def matches(self, lead: LeadSnapshot, grade: str, region: str | None) -> bool:
        return ((not self.stores or lead.store_id in self.stores)
                and (not self.regions or region in self.regions)
                and (not self.products or lead.product in self.products)
                and (not self.grades or grade in self.grades))


@dataclass(frozen=True)
class RoutingPolicy:
    rules: tuple[Rule, ...] = (Rule("same_store", Scope.STORE), Rule("tenant", Scope.TENANT))
    strategy: Strategy = Strategy.LEAST_LOADED
    performance_weight: float = 0.0  # 0: a plain rotation; 1: assignments in proportion to conversion
    owner_protection_days: float = 30.0  # 保护期: the owner keeps the person this long after taking them
    store_regions: Mapping[str, str] = field(default_factory=dict)  # store -> region

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RoutingPolicy:
        known = {"rules", "strategy", "performance_weight", "owner_protection_days", "store_regions"}
        check_keys(data, known, "routing", RoutingError)
        kwargs: dict[str, Any] = {}
        try:
            if "rules" in data:
                kwargs["rules"] = tuple(_rule(r, n) for n, r in enumerate(data["rules"]))
            if "strategy" in data:
                kwargs["strategy"] = Strategy(data["strategy"])
            if "performance_weight" in data:
                kwargs["performance_weight"] = float(data["performance_weight"])
                if not 0 <= kwargs["performance_weight"] <= 1:
                    raise ValueError("performance_weight: between 0 and 1")
            if "owner_protection_days" in data:
                kwargs["owner_protection_days"] = float(data["owner_protection_days"])
            if "store_regions" in data:
                kwargs["store_regions"] = {str(k): str(v) for k, v in dict(data["store_regions"]).items()}
        except (TypeError, ValueError) as exc:
            raise RoutingError(f"routing: {exc}") from None
        return cls(**kwargs)


def _rule(data: Mapping[str, Any], n: int) -> Rule:
    known = {"name", "scope", "stores", "regions", "products", "grades", "skills"}
    if not isinstance(data, Mapping) or "name" not in data:
        raise ValueError(f"rules[{n}]: a table with a name")
    check_keys(data, known, f"rules[{n}]")
    sets = {k: frozenset(map(str, data.get(k, ()))) for k in ("stores", "regions", "products", "grades", "skills")}
    return Rule(str(data["name"]), Scope(data.get("scope", "store")), **sets)


@dataclass(frozen=True)
class Assignment:
    consultant_id: str | None
    rule: str  # the rule that chose (e.g. same_store_least_loaded, owner, manager_queue)
    queue: str = "sales"  # sales | verification | collision | manager
    why: str = ""  # in words, for the manager reading the task
    store_id: str | None = None  # the store whose manager queue holds it, when nobody could take it


def _in_scope(c: Consultant, rule: Rule, lead: LeadSnapshot, policy: RoutingPolicy) -> bool:
    if rule.scope is Scope.STORE:
        return lead.store_id is not None and c.store_id == lead.store_id
    if rule.scope is Scope.REGION:
        region = policy.store_regions.get(lead.store_id or "")
        return region is not None and (c.region or policy.store_regions.get(c.store_id)) == region
    return True


def _weight(c: Consultant, mean: float, policy: RoutingPolicy) -> float:
    if policy.performance_weight <= 0 or c.conversion is None or mean <= 0:
        return 1.0
    return max(0.2, (1 - policy.performance_weight) + policy.performance_weight * c.conversion / mean)


def _pick(pool: Sequence[Consultant], policy: RoutingPolicy) -> Consultant:
    if policy.strategy is Strategy.ROTATION:
        rates = [c.conversion for c in pool if c.conversion is not None]
        mean = sum(rates) / len(rates) if rates else 0.0
        return min(pool, key=lambda c: (c.assigned / _weight(c, mean, policy), c.open_tasks / c.capacity, c.consultant_id))
    return min(pool, key=lambda c: (c.open_tasks / c.capacity, c.assigned, c.consultant_id))


def route(lead: LeadSnapshot, grade: str, consultants: Iterable[Consultant], policy: RoutingPolicy, *,
          today: date, now: datetime) -> Assignment:
    """The consultant for a new task: the owner while protected and available; else the first matching
    rule with an available, skilled consultant; else the store manager's queue."""
    consultants = list(consultants)
    owner = lead.owner
    if owner is not None and now - owner.since <= timedelta(days=policy.owner_protection_days):
        mine = next((c for c in consultants if c.consultant_id == owner.consultant_id), None)
        if mine is not None and mine.available(today):
            return Assignment(mine.consultant_id, "owner", why=f"归属顾问保护期内（自 {owner.since:%Y-%m-%d}）")
    region = policy.store_regions.get(lead.store_id or "")
    for rule in policy.rules:
        if not rule.matches(lead, grade, region):
            continue
        pool = [c for c in consultants if c.available(today) and _in_scope(c, rule, lead, policy)
                and rule.skills <= c.skills and (not c.products or lead.product is None or lead.product in c.products)]
        if pool:
            chosen = _pick(pool, policy)
            how = "轮转最少" if policy.strategy is Strategy.ROTATION else "负载最低"
            return Assignment(chosen.consultant_id, f"{rule.name}_{policy.strategy}",
                              why=f"规则 {rule.name}：{len(pool)} 名可接单顾问中{how}（{chosen.open_tasks}/{chosen.capacity}）")
    if lead.store_id:
        return Assignment(None, "manager_queue", queue="manager", store_id=lead.store_id,
                          why=f"门店 {lead.store_id} 无可接单顾问，进入店长队列")
    return Assignment(None, "unassigned_queue", why="无门店且无可接单顾问，进入待分配队列")
