"""Scoring rules as data: what each signal is worth, how fast it fades, how much repetition counts,
what the lead's fit and quality do, the grade thresholds, when a change is worth telling, and how the
learned model is blended in. One rule set per tenant, read from YAML (docs/scoring.md documents every
field; `services/scoring/rules/` holds the defaults for car dealers and for consultative health products).

A book file (`LEADFLOW_SCORING_RULES_FILE`) says which rule set each tenant uses:

```yaml
default: car_dealer              # a built-in name, a path to a rules file, or a rule set inline
tenants:
  vita-health: health
  acme-motors:
    extends: car_dealer          # a built-in or a path; the keys below replace or merge into it
    grades: {H: 80, A: 55, B: 30}
    fit: {cities: [上海市, 苏州市]}
```

Parsing and validation are pure; files are read only by `builtin`, `load_rules` and `load_book`, which the
bootstrap calls at startup.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.tasks import Outcome
from schemas.touchpoints import EventType

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "rules"
REPEAT_INQUIRY = "repeat_inquiry"  # an inquiry within the window of the person's previous one
OUTCOME_PREFIX = "outcome:"


class RulesError(ValueError):
    """A rule set or book that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignalRule(_Strict):
    """What one kind of signal is worth."""

    label: str = Field(min_length=1, description="the words a consultant reads, e.g. 试驾预约")
    label_en: str | None = None
    weight: float = Field(ge=-100, le=100, description="points for one fresh occurrence; negative lowers the score")
    half_life_days: float = Field(gt=0, le=3650, description="days after which an occurrence counts half")
    cap: float = Field(ge=-100, le=100, description="the most (or, if negative, the least) this signal adds in all")
    repeat_factor: float = Field(1.0, ge=0, le=1, description="each older repetition counts this much of the one before")

    @model_validator(mode="after")
    def _same_sign(self) -> SignalRule:
        if self.weight and self.cap and (self.weight > 0) != (self.cap > 0):
            raise ValueError("weight and cap must have the same sign")
        return self


class RepeatInquiry(SignalRule):
    """The same person asking again: an inquiry within `window_days` of their previous one."""

    window_days: float = Field(30.0, gt=0, le=3650)
    events: list[EventType] = Field(
        [EventType.FORM_SUBMITTED, EventType.CALL_LOGGED, EventType.PRICE_INQUIRED, EventType.QUOTE_REQUESTED,
         EventType.TEST_DRIVE_BOOKED], description="the event types that are inquiries")


class Grades(_Strict):
    """The lowest score of each grade; below B is C. O and F come from the lifecycle, not from here."""

    H: float = Field(75.0, ge=0, le=100)
    A: float = Field(50.0, ge=0, le=100)
    B: float = Field(25.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Grades:
        if not self.H >= self.A >= self.B:
            raise ValueError("thresholds must satisfy H >= A >= B")
        return self

    def thresholds(self) -> tuple[tuple[str, float], ...]:
        return (("H", self.H), ("A", self.A), ("B", self.B))


class Emit(_Strict):
    """When a new score is worth a `scores.changes` event: a grade change, or a move of this many points."""

    min_score_delta: float = Field(5.0, ge=0, le=100)


class JunkPolicy(StrEnum):
    BLOCK = "block"  # the score is 0, whatever the person did
    IGNORE = "ignore"  # scored as a valid lead (for tenants that judge quality elsewhere)


class Quality(_Strict):
    """What the leads service's verdict does to the score."""

    suspect_factor: float = Field(0.5, ge=0, le=1, description="a suspect lead's score is multiplied by this")
    junk: JunkPolicy = JunkPolicy.BLOCK
    label_suspect: str = "疑似无效线索"
    label_suspect_en: str = "suspect lead"
    label_junk: str = "无效线索"
    label_junk_en: str = "junk lead"


class Inactivity(_Strict):
    """Going quiet costs points on top of the decay: `points` once `after_days` passed without a signal,
    and again every `every_days`, down to `cap`."""

    after_days: float = Field(7.0, gt=0, le=3650)
    every_days: float = Field(7.0, gt=0, le=3650)
    points: float = Field(-10.0, ge=-100, le=0)
    cap: float = Field(-30.0, ge=-100, le=0)
    label: str = "无互动"
    label_en: str = "no interaction"


class Fit(_Strict):
    """Fit from the lead's attributes: a city the tenant serves, a budget that matches the product."""

    cities: list[str] = Field([], description="cities served (as cleaned, e.g. 上海市); empty: every city")
    city_points: float = Field(5.0, ge=-100, le=100)
    outside_points: float = Field(-15.0, ge=-100, le=100)
    label_city: str = "服务城市内"
    label_city_en: str = "city served"
    label_outside: str = "城市不在服务范围"
    label_outside_en: str = "city not served"
    prices: dict[str, float] = Field({}, description="product (as cleaned) -> price, for the budget match")
    budget_points: float = Field(8.0, ge=-100, le=100)
    budget_short_points: float = Field(-10.0, ge=-100, le=100)
    budget_tolerance: float = Field(0.15, ge=0, le=1, description="a budget this much below the price still matches")
    label_budget: str = "预算匹配"
    label_budget_en: str = "budget matches"
    label_budget_short: str = "预算不足"
    label_budget_short_en: str = "budget below price"


class LearningMode(StrEnum):
    OFF = "off"
    SHADOW = "shadow"  # learn and report, grades stay on the rule score
    BLEND = "blend"  # grades on the blend of rule score and learned probability


class Learning(_Strict):
    """The per-tenant model learned from consultants' outcomes."""

    mode: LearningMode = LearningMode.BLEND
    min_outcomes: int = Field(50, ge=1, description="labelled persons needed before the model is blended in")
    max_weight: float = Field(0.5, ge=0, le=1, description="the most the model's probability weighs in the blend")
    ramp: int = Field(200, ge=1, description="labelled persons after which the weight reaches half of max_weight")
    learning_rate: float = Field(0.5, gt=0, le=10)  # AdaGrad: the first step's size; later ones shrink
    l2: float = Field(0.0001, ge=0, le=1)
    labels: dict[Outcome, int] = Field(
        {Outcome.WON: 1, Outcome.ORDERED: 1, Outcome.LOST: 0, Outcome.INVALID_NUMBER: 0},
        description="outcomes that end a lead's story, as 1 (converted) or 0 (not)",
    )
    evaluations_kept: int = Field(5000, ge=10, le=20000)

    @field_validator("labels")
    @classmethod
    def _binary(cls, labels: dict[Outcome, int]) -> dict[Outcome, int]:
        bad = [str(k) for k, v in labels.items() if v not in (0, 1)]
        if bad:
            raise ValueError(f"labels must be 0 or 1: {', '.join(bad)}")
        return labels


class Rescore(_Strict):
    """The periodic re-score that lets quiet people's scores fall without an event."""

    every_hours: float = Field(6.0, gt=0, le=24 * 30)


class RuleSet(_Strict):
    name: str = Field(min_length=1)
    version: int = Field(1, ge=1)
    industry: str = "car"
    description: str = ""
    grades: Grades = Grades()
    emit: Emit = Emit()
    quality: Quality = Quality()
    signals: dict[EventType, SignalRule] = {}
    outcomes: dict[Outcome, SignalRule] = {}
    repeat_inquiry: RepeatInquiry | None = None
    inactivity: Inactivity | None = Inactivity()
    fit: Fit = Fit()
    learning: Learning = Learning()
    rescore: Rescore = Rescore()

    @property
    def ref(self) -> str:
        """`name@version`: stored with every score, so a reader knows which rules made it."""
        return f"{self.name}@{self.version}"

    def rule_for(self, kind: str) -> SignalRule | None:
        """The rule of a signal kind: an event type, `outcome:<outcome>` or `repeat_inquiry`."""
        if kind == REPEAT_INQUIRY:
            return self.repeat_inquiry
        if kind.startswith(OUTCOME_PREFIX):
            outcome = kind.removeprefix(OUTCOME_PREFIX)
            return self.outcomes.get(Outcome(outcome)) if outcome in Outcome.__members__.values() else None
        return self.signals.get(EventType(kind)) if kind in EventType.__members__.values() else None

    def kinds(self) -> list[str]:
        """Every signal kind with a rule, in a stable order (the model's feature order)."""
        kinds = [str(e) for e in self.signals] + [OUTCOME_PREFIX + str(o) for o in self.outcomes]
        return kinds + ([REPEAT_INQUIRY] if self.repeat_inquiry else [])


def outcome_kind(outcome: Outcome) -> str:
    return OUTCOME_PREFIX + str(outcome)


# ---- parsing -----------------------------------------------------------------------------------------


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`; mappings merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) else value
    return merged


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors(include_input=False))


def parse_rules(data: Any, *, origin: str, base_dir: Path | None = None, _seen: tuple[str, ...] = ()) -> RuleSet:
    """A rule set from parsed YAML; `extends` names a built-in or a file whose rules it starts from."""
    if not isinstance(data, Mapping):
        raise RulesError(f"{origin}: a mapping of rule fields")
    data = dict(data)
    parent = data.pop("extends", None)
    if parent is not None:
        data = _merge(_raw(str(parent), base_dir=base_dir, origin=origin, seen=_seen), data)
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RulesError(f"{origin}: {_errors(exc)}") from None


def _raw(ref: str, *, base_dir: Path | None, origin: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """The raw mapping of a built-in name or a rules file, with its own `extends` resolved."""
    path = _path_of(ref, base_dir)
    if str(path) in seen:
        raise RulesError(f"{origin}: extends loops through {path.name}")
    data = _read_yaml(path)
    if not isinstance(data, Mapping):
        raise RulesError(f"{path}: a mapping of rule fields")
    data = dict(data)
    parent = data.pop("extends", None)
    return _merge(_raw(str(parent), base_dir=path.parent, origin=str(path), seen=(*seen, str(path))), data) if parent else data


def _path_of(ref: str, base_dir: Path | None) -> Path:
    builtin = BUILTIN_DIR / f"{ref}.yaml"
    if "/" not in ref and not ref.endswith((".yaml", ".yml")):
        if not builtin.exists():
            names = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml")))
            raise RulesError(f"no built-in rule set {ref!r} (built-ins: {names})")
        return builtin
    path = Path(ref)
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML ({exc})") from None


@cache
def builtin(name: str) -> RuleSet:
    """A built-in rule set: `car_dealer` or `health`."""
    path = _path_of(name, None)
    return parse_rules(_read_yaml(path), origin=str(path), base_dir=path.parent)


def load_rules(path: str | Path) -> RuleSet:
    path = Path(path)
    return parse_rules(_read_yaml(path), origin=str(path), base_dir=path.parent)


class RuleBook:
    """The rule set of each tenant, and the default for the others."""

    def __init__(self, default: RuleSet, tenants: Mapping[str, RuleSet] | None = None) -> None:
        self.default = default
        self.tenants = dict(tenants or {})

    def for_tenant(self, tenant_id: str) -> RuleSet:
        return self.tenants.get(tenant_id, self.default)


def _entry(value: Any, *, origin: str, base_dir: Path | None) -> RuleSet:
    if isinstance(value, str):
        path = _path_of(value, base_dir)
        return parse_rules(_read_yaml(path), origin=str(path), base_dir=path.parent)
    return parse_rules(value, origin=origin, base_dir=base_dir)


def parse_book(data: Any, *, origin: str = "rules book", base_dir: Path | None = None) -> RuleBook:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RulesError(f"{origin}: a mapping with `default` and `tenants`")
    unknown = set(data) - {"default", "tenants"}
    if unknown:
        raise RulesError(f"{origin}: unknown keys {', '.join(sorted(map(str, unknown)))} (expected default, tenants)")
    tenants = data.get("tenants") or {}
    if not isinstance(tenants, Mapping):
        raise RulesError(f"{origin}: tenants: a mapping of tenant id to rule set")
    default = _entry(data.get("default", "car_dealer"), origin=f"{origin}: default", base_dir=base_dir)
    return RuleBook(default, {str(t): _entry(v, origin=f"{origin}: tenants.{t}", base_dir=base_dir) for t, v in tenants.items()})


def load_book(path: str | Path | None) -> RuleBook:
    """The book named by the settings; without one, every tenant gets the car-dealer default."""
    if path is None:
        return RuleBook(builtin("car_dealer"))
    path = Path(path)
    return parse_book(_read_yaml(path), origin=str(path), base_dir=path.parent)
