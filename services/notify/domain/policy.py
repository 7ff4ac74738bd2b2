"""What a tenant decides about follow-up: triggers, routing, working hours, first-response deadlines,
escalation and the shared pool. Pure data; the TOML file named by `LEADFLOW_NOTIFY_POLICY_FILE`
overrides the defaults per tenant (a tenant's tables merge over `[default]`, key by key):

```toml
[default.hours]
timezone = "Asia/Shanghai"
days = { mon = ["09:00-21:00"], sun = ["10:00-18:00"] }
holidays = ["2026-10-01"]
[default.sla]
H = "15m"
A = "2h"
B = "24h"
C = "3d"
[default.triggers]
grades_up = ["H", "A"]
high_intent = ["test_drive_booked", "price_inquired", "quote_requested"]
[default.routing]
strategy = "rotation"            # least_loaded | rotation
performance_weight = 0.5
rules = [{ name = "vip", scope = "region", grades = ["H"], skills = ["vip"] },
         { name = "same_store", scope = "store" }, { name = "tenant", scope = "tenant" }]
[default.escalation]
reassign = true
max_reassignments = 1
[default.pool]
return_after_days = 3
[default.delivery]
channels = ["inbox", "wecom"]     # inbox | wecom | email | webhook
quiet_hours = "22:00-08:00"       # WeCom and e-mail wait until the morning ("" for none)
max_per_hour = 30
[tenants.vita.repurchase]          # health products: remind 5 days before a purchase runs out
cycles = { "益生菌" = 30, "鱼油" = 60 }
remind_days_before = 5
[tenants.acme.sla]
H = "10m"
```
docs/notify.md explains each to a sales manager.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from typing import Any

from services.notify.domain.keys import check_keys
from services.notify.domain.delivery import DeliveryError, parse_quiet_hours
from services.notify.domain.pool import PoolError, PoolPolicy
from services.notify.domain.repurchase import RepurchaseError, RepurchasePolicy
from services.notify.domain.routing import RoutingError, RoutingPolicy
from services.notify.domain.tasks import TriggerError, Triggers
from services.notify.domain.worktime import SlaPolicy, WorkingHours, WorkTimeError


class NotifyPolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, tenant and key."""


@dataclass(frozen=True)
class Escalation:
    """What a missed first-response deadline does."""

    manager: bool = True  # the store manager is told (their inbox; a push once channels are configured)
    reassign: bool = True  # the task moves to another available consultant, with a fresh deadline
    max_reassignments: int = 1  # after that it stays where it is (and the manager already knows)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Escalation:
        check_keys(data, (f.name for f in fields(cls)), "escalation", NotifyPolicyError)
        for key in ("manager", "reassign"):
            if key in data and not isinstance(data[key], bool):
                raise NotifyPolicyError(f"escalation.{key}: true or false")
        if "max_reassignments" in data and (isinstance(data["max_reassignments"], bool)
                                            or not isinstance(data["max_reassignments"], int)
                                            or data["max_reassignments"] < 0):
            raise NotifyPolicyError("escalation.max_reassignments: a whole number, at least 0")
        return cls(**dict(data))


CHANNEL_NAMES = ("inbox", "wecom", "email", "webhook")


@dataclass(frozen=True)
class DeliveryPolicy:
    """Where task pushes go: the in-app inbox always works; WeCom and e-mail reach consultants who have a
    WeCom userid or an address, once the service is configured for them; the webhook goes to the tenant's URL."""

    channels: tuple[str, ...] = ("inbox",)
    webhook_url: str | None = None
    quiet_hours: tuple[time, time] | None = (time(22, 0), time(8, 0))  # local; WeCom and e-mail wait till after
    max_per_hour: int = 30  # WeCom and e-mail pushes per consultant per hour; more wait
    # The customer hears back at once: a new valid lead's acknowledgement goes to this URL (the upstream system
    # that published the touchpoint replies through the channel it came from; leadflow never holds the raw
    # contact). None: no acknowledgement.
    acknowledge_url: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DeliveryPolicy:
        check_keys(data, ("channels", "webhook_url", "quiet_hours", "max_per_hour", "acknowledge_url"), "delivery",
                   NotifyPolicyError)
        channels = tuple(data.get("channels", cls.channels))
        bad = [c for c in channels if c not in CHANNEL_NAMES]
        if bad:
            raise NotifyPolicyError(f"delivery.channels: one of {', '.join(CHANNEL_NAMES)} (not {', '.join(map(str, bad))})")
        url = data.get("webhook_url")
        if "webhook" in channels and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise NotifyPolicyError("delivery.webhook_url: an http(s) URL when the webhook channel is on")
        quiet = cls.quiet_hours
        if "quiet_hours" in data:
            try:
                quiet = parse_quiet_hours(str(data["quiet_hours"])) if data["quiet_hours"] else None
            except DeliveryError as exc:
                raise NotifyPolicyError(f"delivery.{exc}") from None
        limit = data.get("max_per_hour", cls.max_per_hour)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise NotifyPolicyError("delivery.max_per_hour: a whole number, at least 1")
        ack = data.get("acknowledge_url")
        if ack is not None and not (isinstance(ack, str) and ack.startswith(("http://", "https://"))):
            raise NotifyPolicyError("delivery.acknowledge_url: an http(s) URL")
        return cls(channels, url, quiet, limit, ack)


@dataclass(frozen=True)
class NotifyPolicy:
    hours: WorkingHours = field(default_factory=WorkingHours)
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    triggers: Triggers = field(default_factory=Triggers)
    routing: RoutingPolicy = field(default_factory=RoutingPolicy)
    escalation: Escalation = field(default_factory=Escalation)
    pool: PoolPolicy = field(default_factory=PoolPolicy)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    repurchase: RepurchasePolicy = field(default_factory=RepurchasePolicy)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> NotifyPolicy:
        parsers = {"hours": WorkingHours.from_mapping, "sla": SlaPolicy.from_mapping, "triggers": Triggers.from_mapping,
                   "routing": RoutingPolicy.from_mapping, "escalation": Escalation.from_mapping,
                   "pool": PoolPolicy.from_mapping, "delivery": DeliveryPolicy.from_mapping,
                   "repurchase": RepurchasePolicy.from_mapping}
        unknown = set(data) - set(parsers)
        if unknown:
            raise NotifyPolicyError(f"unknown tables {', '.join(sorted(map(str, unknown)))}")
        kwargs = {}
        for key, value in data.items():
            if not isinstance(value, Mapping):
                raise NotifyPolicyError(f"{key}: a table")
            try:
                kwargs[key] = parsers[key](value)
            except (WorkTimeError, TriggerError, RoutingError, PoolError, RepurchaseError) as exc:
                raise NotifyPolicyError(f"{key}: {exc}") from None
        return cls(**kwargs)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) else value
    return merged


class NotifyPolicyBook:
    def __init__(self, default: NotifyPolicy | None = None, tenants: Mapping[str, NotifyPolicy] | None = None) -> None:
        self.default = default or NotifyPolicy()
        self.tenants = dict(tenants or {})

    def for_tenant(self, tenant_id: str) -> NotifyPolicy:
        return self.tenants.get(tenant_id, self.default)


def parse_policies(data: Mapping[str, Any], origin: str = "notify policy") -> NotifyPolicyBook:
    unknown = set(data) - {"default", "tenants"}
    if unknown:
        raise NotifyPolicyError(f"{origin}: unknown keys {', '.join(sorted(map(str, unknown)))} (expected default, tenants)")
    base = data.get("default", {})
    try:
        default = NotifyPolicy.from_mapping(base)
    except NotifyPolicyError as exc:
        raise NotifyPolicyError(f"{origin}: default.{exc}") from None
    tenants = {}
    for tenant, over in dict(data.get("tenants", {})).items():
        try:
            tenants[str(tenant)] = NotifyPolicy.from_mapping(_merge(base, over))
        except NotifyPolicyError as exc:
            raise NotifyPolicyError(f"{origin}: tenants.{tenant}.{exc}") from None
    return NotifyPolicyBook(default, tenants)


def load_notify_policies(path: str | Path | None) -> NotifyPolicyBook:
    if path is None:
        return NotifyPolicyBook()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NotifyPolicyError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise NotifyPolicyError(f"{path}: not valid TOML ({exc})") from None
    return parse_policies(data, str(path))
