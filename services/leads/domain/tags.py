"""Tags derived from a person's behaviour and attributes by rules written as data. Pure.

A rule is `{"tag": ..., "when": <condition>}`. A tag may hold `{value}`, filled by the condition:

| condition | holds when | value |
|---|---|---|
| `{"event_count": {"price_inquired": {">=": 2}}}` | every listed count compares true | |
| `{"fact": {"repurchases": {">=": 1}}}` | every listed number compares true (FACT_NAMES) | |
| `{"flag": "referred"}` | the flag is set (FLAG_NAMES) | |
| `{"stage": ["customer", "loyal"]}` | the stage is one of these | |
| `{"attribute": "product"}` or `{"attribute": {"name": "city", "in": ["上海"]}}` | the attribute is set (and listed) | its text |
| `{"budget_band": {"edges": [0, 100000, 200000], "unit": "万"}}` | a budget is known | its band: `10-20万`, `20万以上` |
| `{"top_channel": {"min": 2}}` | some channel has at least `min` touchpoints | the channel with the most (ties: by name) |
| `{"all": [...]}`, `{"any": [...]}`, `{"not": {...}}` | as named | the first value of a child that holds |

Comparisons: `>=`, `>`, `<=`, `<`, `==`, `!=` against whole numbers. `load_rules` checks all of it and
names the place of each error, e.g. `rules[2].when.event_count.price_inquired: unknown operator '=>'`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.leads import Stage
from schemas.touchpoints import EventType
from services.leads.domain.stages import LifecycleState

VALUE = "{value}"
OPERATORS: Mapping[str, Callable[[int, int], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
FLAG_NAMES = frozenset({"referred", "unsubscribed", "reachable", "unreachable"})
FACT_NAMES = frozenset({"repurchases", "referrals", "service_visits", "touchpoints"})
UNITS: Mapping[str, int] = {"万": 10_000, "元": 1, "k": 1_000}


class TagRuleError(ValueError):
    """A rule that cannot be used; the message names where it is."""


@dataclass(frozen=True)
class ProfileFacts:
    """What the tag rules look at: counts per event type and channel, cleaned attributes, lifecycle facts."""

    event_counts: Mapping[str, int] = field(default_factory=dict)
    channel_counts: Mapping[str, int] = field(default_factory=dict)
    attributes: Mapping[str, Any] = field(default_factory=dict)
    budget_low: int | None = None
    budget_high: int | None = None
    stage: Stage | None = None
    referred: bool = False
    unsubscribed: bool = False
    reachable: bool = False
    unreachable: bool = False
    repurchases: int = 0
    referrals: int = 0
    service_visits: int = 0

    @property
    def touchpoints(self) -> int:
        return sum(self.event_counts.values())

    @classmethod
    def of(cls, state: LifecycleState, **kwargs: Any) -> ProfileFacts:
        """Facts with the lifecycle part taken from `state`; counts and attributes as keyword arguments."""
        return cls(
            stage=state.stage, referred=state.referred, unsubscribed=state.unsubscribed, reachable=state.reachable,
            unreachable=state.unreachable, repurchases=state.repurchases, referrals=state.referrals,
            service_visits=state.service_visits_since_purchase, **kwargs,
        )


# ---- conditions ----------------------------------------------------------------------------------
# Each condition returns None when it does not hold, else the value it gives ("" for none).


@dataclass(frozen=True)
class _Counts:
    source: str  # "event_counts" or a fact
    checks: tuple[tuple[str, str, int], ...]  # (name, operator, threshold)
    gives_value = False

    def __call__(self, facts: ProfileFacts) -> str | None:
        for name, op, threshold in self.checks:
            actual = facts.event_counts.get(name, 0) if self.source == "event_count" else getattr(facts, name)
            if not OPERATORS[op](actual, threshold):
                return None
        return ""


@dataclass(frozen=True)
class _Flag:
    name: str
    gives_value = False

    def __call__(self, facts: ProfileFacts) -> str | None:
        return "" if getattr(facts, self.name) else None


@dataclass(frozen=True)
class _Stage:
    stages: frozenset[Stage]
    gives_value = False

    def __call__(self, facts: ProfileFacts) -> str | None:
        return "" if facts.stage in self.stages else None


@dataclass(frozen=True)
class _Attribute:
    name: str
    allowed: frozenset[str] | None = None
    gives_value = True

    def __call__(self, facts: ProfileFacts) -> str | None:
        raw = facts.attributes.get(self.name)
        if raw is None or isinstance(raw, dict | list | tuple | set):
            return None
        text = str(raw).strip()
        if not text or (self.allowed is not None and text not in self.allowed):
            return None
        return text


@dataclass(frozen=True)
class _BudgetBand:
    edges: tuple[int, ...]
    unit: str
    gives_value = True

    def _show(self, amount: int) -> str:
        value = amount / UNITS[self.unit]
        return f"{value:g}"

    def __call__(self, facts: ProfileFacts) -> str | None:
        low, high = facts.budget_low, facts.budget_high
        if low is None:
            return None
        middle = low if high is None else (low + high) / 2
        if middle < self.edges[0]:
            return f"{self._show(self.edges[0])}{self.unit}以下"
        for lo, hi in zip(self.edges, self.edges[1:]):
            if lo <= middle < hi:
                return f"{self._show(lo)}-{self._show(hi)}{self.unit}"
        return f"{self._show(self.edges[-1])}{self.unit}以上"


@dataclass(frozen=True)
class _TopChannel:
    minimum: int
    gives_value = True

    def __call__(self, facts: ProfileFacts) -> str | None:
        counted = [(-n, str(channel)) for channel, n in facts.channel_counts.items() if n >= self.minimum and n > 0]
        return min(counted)[1] if counted else None


@dataclass(frozen=True)
class _All:
    parts: tuple[Any, ...]

    @property
    def gives_value(self) -> bool:
        return any(p.gives_value for p in self.parts)

    def __call__(self, facts: ProfileFacts) -> str | None:
        value = ""
        for part in self.parts:
            got = part(facts)
            if got is None:
                return None
            value = value or got
        return value


@dataclass(frozen=True)
class _Any:
    parts: tuple[Any, ...]

    @property
    def gives_value(self) -> bool:
        return any(p.gives_value for p in self.parts)

    def __call__(self, facts: ProfileFacts) -> str | None:
        held = [got for got in (part(facts) for part in self.parts) if got is not None]
        if not held:
            return None
        return next((v for v in held if v), "")


@dataclass(frozen=True)
class _Not:
    part: Any
    gives_value = False

    def __call__(self, facts: ProfileFacts) -> str | None:
        return "" if self.part(facts) is None else None


@dataclass(frozen=True)
class TagRule:
    tag: str
    when: Callable[[ProfileFacts], str | None]

    def apply(self, facts: ProfileFacts) -> str | None:
        """The tag this rule gives, or None."""
        value = self.when(facts)
        if value is None:
            return None
        if VALUE in self.tag:
            return self.tag.replace(VALUE, value) if value else None
        return self.tag


# ---- loading -------------------------------------------------------------------------------------


def _whole(value: Any, where: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise TagRuleError(f"{where}: expected a whole number >= {minimum}, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise TagRuleError(f"{where}: expected a non-empty mapping, got {value!r}")
    return value


def _comparisons(name: str, spec: Any, where: str) -> list[tuple[str, str, int]]:
    out = []
    for op, threshold in _mapping(spec, where).items():
        if op not in OPERATORS:
            raise TagRuleError(f"{where}: unknown operator {op!r} (one of {' '.join(OPERATORS)})")
        out.append((name, op, _whole(threshold, f"{where}.{op}")))
    return out


def _condition(spec: Any, where: str) -> Any:
    spec = _mapping(spec, where)
    if len(spec) != 1:
        raise TagRuleError(f"{where}: one condition per mapping, got {', '.join(map(str, spec))} (use all/any)")
    (kind, arg), = spec.items()
    here = f"{where}.{kind}"
    if kind == "event_count":
        checks = []
        for name, comparison in _mapping(arg, here).items():
            if name not in EventType.__members__.values():
                raise TagRuleError(f"{here}: unknown event type {name!r}")
            checks += _comparisons(str(name), comparison, f"{here}.{name}")
        return _Counts("event_count", tuple(checks))
    if kind == "fact":
        checks = []
        for name, comparison in _mapping(arg, here).items():
            if name not in FACT_NAMES:
                raise TagRuleError(f"{here}: unknown fact {name!r} (one of {', '.join(sorted(FACT_NAMES))})")
            checks += _comparisons(name, comparison, f"{here}.{name}")
        return _Counts("fact", tuple(checks))
    if kind == "flag":
        if arg not in FLAG_NAMES:
            raise TagRuleError(f"{here}: unknown flag {arg!r} (one of {', '.join(sorted(FLAG_NAMES))})")
        return _Flag(arg)
    if kind == "stage":
        if isinstance(arg, str) or not isinstance(arg, Sequence) or not arg:
            raise TagRuleError(f"{here}: expected a non-empty list of stages")
        try:
            return _Stage(frozenset(Stage(s) for s in arg))
        except ValueError:
            raise TagRuleError(f"{here}: unknown stage in {list(arg)!r} (one of {', '.join(Stage)})") from None
    if kind == "attribute":
        if isinstance(arg, str) and arg.strip():
            return _Attribute(arg.strip())
        spec = _mapping(arg, here)
        extra = set(spec) - {"name", "in"}
        if extra or not isinstance(spec.get("name"), str) or not spec["name"].strip():
            raise TagRuleError(f"{here}: expected an attribute name or {{'name': ..., 'in': [...]}}")
        allowed = spec.get("in")
        if allowed is not None and (isinstance(allowed, str) or not isinstance(allowed, Sequence) or not allowed):
            raise TagRuleError(f"{here}.in: expected a non-empty list of values")
        return _Attribute(spec["name"].strip(), frozenset(map(str, allowed)) if allowed is not None else None)
    if kind == "budget_band":
        spec = _mapping(arg, here)
        extra = set(spec) - {"edges", "unit"}
        if extra:
            raise TagRuleError(f"{here}: unknown keys {', '.join(sorted(extra))}")
        edges = spec.get("edges")
        if isinstance(edges, str) or not isinstance(edges, Sequence) or len(edges) < 2:
            raise TagRuleError(f"{here}.edges: expected at least two amounts in CNY")
        edges = tuple(_whole(e, f"{here}.edges[{i}]") for i, e in enumerate(edges))
        if any(a >= b for a, b in zip(edges, edges[1:])):
            raise TagRuleError(f"{here}.edges: amounts must rise strictly, got {list(edges)}")
        unit = spec.get("unit", "万")
        if unit not in UNITS:
            raise TagRuleError(f"{here}.unit: one of {', '.join(UNITS)}, got {unit!r}")
        return _BudgetBand(edges, unit)
    if kind == "top_channel":
        spec = arg if arg == {} else _mapping(arg, here)
        extra = set(spec) - {"min"}
        if extra:
            raise TagRuleError(f"{here}: unknown keys {', '.join(sorted(extra))}")
        return _TopChannel(_whole(spec.get("min", 1), f"{here}.min", 1))
    if kind in ("all", "any"):
        if isinstance(arg, str | Mapping) or not isinstance(arg, Sequence) or not arg:
            raise TagRuleError(f"{here}: expected a non-empty list of conditions")
        parts = tuple(_condition(part, f"{here}[{i}]") for i, part in enumerate(arg))
        return _All(parts) if kind == "all" else _Any(parts)
    if kind == "not":
        return _Not(_condition(arg, here))
    raise TagRuleError(f"{where}: unknown condition {kind!r}")


def load_rules(data: Iterable[Mapping[str, Any]]) -> tuple[TagRule, ...]:
    """Rules from data, checked: raises TagRuleError naming the first problem."""
    if isinstance(data, str | Mapping):
        raise TagRuleError("rules: expected a list of rules")
    rules = []
    for i, raw in enumerate(data):
        where = f"rules[{i}]"
        if not isinstance(raw, Mapping):
            raise TagRuleError(f"{where}: expected a mapping with 'tag' and 'when'")
        extra = set(raw) - {"tag", "when"}
        if extra or "tag" not in raw or "when" not in raw:
            raise TagRuleError(f"{where}: expected exactly the keys 'tag' and 'when', got {', '.join(map(str, raw))}")
        tag = raw["tag"]
        if not isinstance(tag, str) or not tag.strip():
            raise TagRuleError(f"{where}.tag: expected a non-empty text")
        tag = tag.strip()
        if tag.replace(VALUE, "").count("{") or tag.replace(VALUE, "").count("}"):
            raise TagRuleError(f"{where}.tag: the only placeholder is {VALUE}, got {tag!r}")
        when = _condition(raw["when"], f"{where}.when")
        if VALUE in tag and not when.gives_value:
            raise TagRuleError(f"{where}.tag: {VALUE} needs a condition that gives a value (attribute, budget_band, top_channel)")
        rules.append(TagRule(tag, when))
    return tuple(rules)


def derive_tags(facts: ProfileFacts, rules: Iterable[TagRule] | Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The tags the rules give for these facts: unique and sorted. Raw rule data is checked first."""
    rules = list(rules)
    compiled = rules if all(isinstance(r, TagRule) for r in rules) else load_rules(rules)
    return tuple(sorted({tag for rule in compiled if (tag := rule.apply(facts)) is not None}))


# ---- defaults ------------------------------------------------------------------------------------

_COMMON: list[dict[str, Any]] = [
    {"tag": "意向:{value}", "when": {"attribute": "product"}},
    {"tag": "偏好渠道:{value}", "when": {"top_channel": {"min": 2}}},
    {"tag": "老客推荐", "when": {"flag": "referred"}},
    {"tag": "价格敏感", "when": {"any": [{"event_count": {"price_inquired": {">=": 2}}},
                                        {"event_count": {"quote_requested": {">=": 2}}}]}},
    {"tag": "已退订", "when": {"flag": "unsubscribed"}},
    {"tag": "联系不上", "when": {"flag": "unreachable"}},
    {"tag": "推荐达人", "when": {"fact": {"referrals": {">=": 2}}}},
    {"tag": "复购客户", "when": {"fact": {"repurchases": {">=": 1}}}},
    {"tag": "有投诉", "when": {"event_count": {"complaint_filed": {">=": 1}}}},
]
CAR_TAG_RULES_DATA: list[dict[str, Any]] = [
    *_COMMON,
    {"tag": "预算:{value}", "when": {"budget_band": {
        "edges": [0, 100_000, 150_000, 200_000, 300_000, 500_000, 1_000_000], "unit": "万"}}},
    {"tag": "已试驾", "when": {"event_count": {"test_drive_booked": {">=": 1}}}},
    {"tag": "到店客户", "when": {"event_count": {"store_visited": {">=": 1}}}},
    {"tag": "高意向", "when": {"all": [{"event_count": {"test_drive_booked": {">=": 1}}},
                                      {"any": [{"event_count": {"quote_requested": {">=": 1}}},
                                               {"event_count": {"price_inquired": {">=": 1}}}]}]}},
    {"tag": "售后常客", "when": {"all": [{"stage": ["customer", "loyal"]}, {"fact": {"service_visits": {">=": 2}}}]}},
]
HEALTH_TAG_RULES_DATA: list[dict[str, Any]] = [
    *_COMMON,
    {"tag": "预算:{value}", "when": {"budget_band": {"edges": [0, 500, 1_000, 3_000, 5_000, 10_000], "unit": "元"}}},
    {"tag": "咨询活跃", "when": {"event_count": {"chat_message": {">=": 3}}}},
    {"tag": "内容互动", "when": {"event_count": {"content_engaged": {">=": 3}}}},
    {"tag": "私域好友", "when": {"event_count": {"wecom_contact_added": {">=": 1}}}},
]
CAR_TAG_RULES: tuple[TagRule, ...] = load_rules(CAR_TAG_RULES_DATA)
HEALTH_TAG_RULES: tuple[TagRule, ...] = load_rules(HEALTH_TAG_RULES_DATA)
