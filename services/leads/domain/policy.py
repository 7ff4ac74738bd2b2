"""What a tenant decides about its leads: quality thresholds, lifecycle timings, catalogue, tag rules,
repeat-inquiry window, cross-store collisions, replacement cycles and source alerts. Pure data; the
TOML file named by `LEADFLOW_LEADS_POLICY_FILE` overrides the defaults per tenant:

```toml
[default]
industry = "car"                     # car | health | other: the product catalogue and replacement cycle
repeat_window_days = 30
collision = "keep_owner"             # keep_owner | reassign | ask_ops
[default.quality]
max_forms_per_device = 3
[default.lifecycle]
dormant_after_days = { lead = 30 }
[default.alerts]
ratio = 2.0
[default.products]
"Model Y" = ["特斯拉Y", "毛豆Y"]
[[default.tags]]
tag = "价格敏感"
when = { event_count = { price_inquired = { ">=" = 2 } } }
[tenants.acme]
collision = "ask_ops"
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from services.leads.domain.cleaning import CAR_CATALOGUE, DEFAULT_CATALOGUE, HEALTH_CATALOGUE, BudgetRules, Catalogue
from services.leads.domain.quality import QualityPolicy
from services.leads.domain.replacement import CAR_REPLACEMENT, HEALTH_REPLACEMENT, ReplacementPolicy
from services.leads.domain.source_quality import AlertPolicy
from services.leads.domain.stages import LifecyclePolicy
from services.leads.domain.tags import TagRule, load_rules


class LeadPolicyError(ValueError):
    """A policy file that cannot be used; the message names the place."""


class CollisionPolicy(StrEnum):
    """What happens when a person owned by a consultant of one store inquires at another (撞单)."""

    KEEP_OWNER = "keep_owner"  # the owner keeps the person; the other store is told
    REASSIGN = "reassign"  # the inquiring store takes over
    ASK_OPS = "ask_ops"  # nobody is routed until ops decide


# Tags every tenant gets unless it writes its own list. Values in Simplified Chinese: consultants read them.
DEFAULT_TAG_RULES: tuple[Mapping[str, Any], ...] = (
    {"tag": "意向:{value}", "when": {"attribute": "product"}},
    {"tag": "预算:{value}", "when": {"budget_band": {"edges": [0, 100_000, 200_000, 300_000, 500_000], "unit": "万"}}},
    {"tag": "偏好渠道:{value}", "when": {"top_channel": {"min": 2}}},
    {"tag": "价格敏感", "when": {"any": [{"event_count": {"price_inquired": {">=": 2}}},
                                      {"event_count": {"quote_requested": {">=": 2}}}]}},
    {"tag": "到店", "when": {"event_count": {"store_visited": {">=": 1}}}},
    {"tag": "转介绍客户", "when": {"flag": "referred"}},
    {"tag": "老带新", "when": {"fact": {"referrals": {">=": 1}}}},
    {"tag": "复购", "when": {"fact": {"repurchases": {">=": 1}}}},
    {"tag": "联系不上", "when": {"flag": "unreachable"}},
    {"tag": "已退订", "when": {"flag": "unsubscribed"}},
)

INDUSTRIES: Mapping[str, tuple[Catalogue, ReplacementPolicy]] = {
    "car": (CAR_CATALOGUE, CAR_REPLACEMENT),
    "health": (HEALTH_CATALOGUE, HEALTH_REPLACEMENT),
    "other": (DEFAULT_CATALOGUE, CAR_REPLACEMENT),
}


@dataclass(frozen=True)
class LeadPolicy:
    industry: str = "car"
    quality: QualityPolicy = field(default_factory=QualityPolicy)
    lifecycle: LifecyclePolicy = field(default_factory=LifecyclePolicy)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    catalogue: Catalogue = CAR_CATALOGUE
    budget_rules: BudgetRules = field(default_factory=BudgetRules)
    replacement: ReplacementPolicy = CAR_REPLACEMENT
    tag_rules: tuple[TagRule, ...] = field(default_factory=lambda: load_rules(DEFAULT_TAG_RULES))
    # A second inquiry within this window is the same lead asking again, not a new lead.
    repeat_window: timedelta = timedelta(days=30)
    collision: CollisionPolicy = CollisionPolicy.KEEP_OWNER


@dataclass(frozen=True)
class LeadPolicyBook:
    default: LeadPolicy = field(default_factory=LeadPolicy)
    tenants: Mapping[str, LeadPolicy] = field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> LeadPolicy:
        return self.tenants.get(tenant_id, self.default)


_KEYS = {"industry", "quality", "lifecycle", "alerts", "products", "tags", "repeat_window_days", "collision",
         "budget_bare_unit"}


def _apply(base: LeadPolicy, table: Mapping[str, Any], where: str) -> LeadPolicy:
    unknown = set(table) - _KEYS
    if unknown:
        raise LeadPolicyError(f"{where}: unknown keys {sorted(unknown)}")
    changes: dict[str, Any] = {}
    try:
        if "industry" in table:
            if table["industry"] not in INDUSTRIES:
                raise LeadPolicyError(f"{where}.industry: one of {sorted(INDUSTRIES)}")
            changes["industry"] = table["industry"]
            changes["catalogue"], changes["replacement"] = INDUSTRIES[table["industry"]]
        if "quality" in table:
            changes["quality"] = QualityPolicy.from_mapping(table["quality"])
        if "lifecycle" in table:
            changes["lifecycle"] = LifecyclePolicy.from_mapping(table["lifecycle"])
        if "alerts" in table:
            changes["alerts"] = AlertPolicy.from_mapping(table["alerts"])
        if "products" in table:
            catalogue = changes.get("catalogue", base.catalogue)
            changes["catalogue"] = catalogue.merged(Catalogue.from_mapping(table["products"]))
        if "tags" in table:
            changes["tag_rules"] = load_rules(table["tags"])
        if "repeat_window_days" in table:
            days = table["repeat_window_days"]
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                raise LeadPolicyError(f"{where}.repeat_window_days: a whole number of days >= 1")
            changes["repeat_window"] = timedelta(days=days)
        if "collision" in table:
            changes["collision"] = CollisionPolicy(table["collision"])
        if "budget_bare_unit" in table:
            changes["budget_rules"] = replace(base.budget_rules, bare_unit=int(table["budget_bare_unit"]))
    except LeadPolicyError:
        raise
    except (ValueError, TypeError) as exc:
        raise LeadPolicyError(f"{where}: {exc}") from None
    return replace(base, **changes)


def load_lead_policies(path: Path | None) -> LeadPolicyBook:
    """Read the TOML policy file; no file means the defaults for everybody."""
    if path is None:
        return LeadPolicyBook()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = set(data) - {"default", "tenants"}
    if unknown:
        raise LeadPolicyError(f"unknown top-level tables {sorted(unknown)}")
    default = _apply(LeadPolicy(), data.get("default", {}), "default")
    tenants = {name: _apply(default, table, f"tenants.{name}") for name, table in data.get("tenants", {}).items()}
    return LeadPolicyBook(default, MappingProxyType(tenants))
