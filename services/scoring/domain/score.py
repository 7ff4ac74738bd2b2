"""Pure scoring: signals and the lead in, a 0-100 score, an H/A/B/C grade (O and F from the lifecycle)
and the explanation out. `now` is always passed in, so the same person scored later has decayed.

The rule score adds, per kind of signal, the decayed points of each occurrence (older repetitions count
less, by `repeat_factor`), capped; then going quiet, the lead's fit, and its quality verdict. A learned
model, once it has seen enough outcomes, is blended in; its share is a line of the explanation too, so the
lines always add up to the score.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from schemas.leads import LeadSnapshot, Stage, Verdict
from schemas.scores import Contribution, Grade
from services.scoring.domain.explain import describe
from services.scoring.domain.learning import Model, blend_weight
from services.scoring.domain.rules import REPEAT_INQUIRY, JunkPolicy, LearningMode, RuleSet

SIGNALS_KEPT = 200
INACTIVITY = "inactivity"
FIT_CITY = "fit:city"
FIT_BUDGET = "fit:budget"
QUALITY_SUSPECT = "quality:suspect"
QUALITY_JUNK = "quality:junk"
MODEL = "model"


@dataclass(frozen=True)
class Signal:
    event_id: str
    kind: str  # an event type or `outcome:<outcome>` (see RuleSet.rule_for)
    occurred_at: datetime


@dataclass(frozen=True)
class Scored:
    score: float
    grade: Grade
    contributions: tuple[Contribution, ...]
    rule_score: float | None = None  # before the model's share
    probability: float | None = None  # the model's, when it has one
    blend_weight: float = 0.0  # the model's share in `score` (0 in shadow mode)
    model_version: int | None = None
    features: tuple[tuple[str, float], ...] = ()  # what the model saw, for learning from this person's outcome


@dataclass(frozen=True)
class _Line:
    kind: str
    label: str
    label_en: str | None
    count: int
    points: float
    last_at: datetime | None = None
    days: int | None = None


def decay(age_days: float, half_life_days: float) -> float:
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


def _age_days(now: datetime, at: datetime) -> float:
    return (now - at).total_seconds() / 86_400


def _signal_lines(signals: tuple[Signal, ...], rules: RuleSet, now: datetime) -> list[_Line]:
    by_kind: dict[str, list[Signal]] = defaultdict(list)
    for signal in signals:
        if rules.rule_for(signal.kind) is not None:
            by_kind[signal.kind].append(signal)
    if rules.repeat_inquiry is not None:
        by_kind[REPEAT_INQUIRY] = repeats(signals, rules)
        if not by_kind[REPEAT_INQUIRY]:
            del by_kind[REPEAT_INQUIRY]
    lines = []
    for kind, occurrences in by_kind.items():
        rule = rules.rule_for(kind)
        assert rule is not None
        occurrences.sort(key=lambda s: s.occurred_at, reverse=True)  # the newest counts fully
        total = sum(rule.weight * decay(_age_days(now, s.occurred_at), rule.half_life_days) * rule.repeat_factor ** n
                    for n, s in enumerate(occurrences))
        capped = max(total, rule.cap) if rule.cap < 0 else min(total, rule.cap)
        lines.append(_Line(kind, rule.label, rule.label_en, len(occurrences), capped, occurrences[0].occurred_at))
    return lines


def repeats(signals: tuple[Signal, ...], rules: RuleSet) -> list[Signal]:
    """Inquiries that came within the window of the one before: the same person asking again. Derived
    from the set of signals, not from the order they arrived in, so a merge or split gives the same
    answer however it raced the touchpoints."""
    rule = rules.repeat_inquiry
    if rule is None:
        return []
    kinds = {str(e) for e in rule.events}
    inquiries = sorted((s for s in signals if s.kind in kinds), key=lambda s: (s.occurred_at, s.event_id))
    return [b for a, b in zip(inquiries, inquiries[1:]) if _age_days(b.occurred_at, a.occurred_at) <= rule.window_days]


def _inactivity(signals: tuple[Signal, ...], rules: RuleSet, now: datetime) -> _Line | None:
    quiet = rules.inactivity
    if quiet is None or not signals:
        return None
    days = _age_days(now, max(s.occurred_at for s in signals))
    if days < quiet.after_days:
        return None
    steps = 1 + math.floor((days - quiet.after_days) / quiet.every_days)
    return _Line(INACTIVITY, quiet.label, quiet.label_en, 1, max(quiet.cap, steps * quiet.points), days=int(days))


def _fit(lead: LeadSnapshot, rules: RuleSet) -> list[_Line]:
    fit, lines = rules.fit, []
    if fit.cities and lead.city:
        served = lead.city in fit.cities
        lines.append(_Line(FIT_CITY, fit.label_city if served else fit.label_outside,
                           fit.label_city_en if served else fit.label_outside_en, 1,
                           fit.city_points if served else fit.outside_points))
    price = fit.prices.get(lead.product) if lead.product else None
    if price and (lead.budget_low is not None or lead.budget_high is not None):
        top = lead.budget_high if lead.budget_high is not None else math.inf  # "40万以上": no upper bound
        enough = top >= price * (1 - fit.budget_tolerance)
        lines.append(_Line(FIT_BUDGET, fit.label_budget if enough else fit.label_budget_short,
                           fit.label_budget_en if enough else fit.label_budget_short_en, 1,
                           fit.budget_points if enough else fit.budget_short_points))
    return lines


def _scale(kind: str, rules: RuleSet) -> float:
    rule = rules.rule_for(kind)
    if rule is not None:
        return abs(rule.cap) or 1.0
    if kind == INACTIVITY and rules.inactivity is not None:
        return abs(rules.inactivity.cap) or 1.0
    return 10.0  # fit lines: their points are in the tens


def features_of(lines: list[_Line], lead: LeadSnapshot, rules: RuleSet) -> dict[str, float]:
    """What the model learns from: each rule line scaled into [-1, 1] (absent lines are 0), and the verdict."""
    x = dict.fromkeys([*rules.kinds(), INACTIVITY, FIT_CITY, FIT_BUDGET], 0.0)
    for line in lines:
        x[line.kind] = max(-1.0, min(1.0, line.points / _scale(line.kind, rules)))
    x["verdict:suspect"] = 1.0 if lead.verdict is Verdict.SUSPECT else 0.0
    return x


def score(signals: tuple[Signal, ...], lead: LeadSnapshot, rules: RuleSet, now: datetime,
          model: Model | None = None) -> Scored:
    lines = _signal_lines(signals, rules, now)
    quiet = _inactivity(signals, rules, now)
    lines += ([quiet] if quiet else []) + _fit(lead, rules)
    x = features_of(lines, lead, rules)
    raw = sum(line.points for line in lines)
    quality = rules.quality
    if lead.verdict is Verdict.JUNK and quality.junk is JunkPolicy.BLOCK:
        lines.append(_Line(QUALITY_JUNK, quality.label_junk, quality.label_junk_en, 1, -max(raw, 0.0)))
    elif lead.verdict is Verdict.SUSPECT and raw > 0 and quality.suspect_factor < 1:
        lines.append(_Line(QUALITY_SUSPECT, quality.label_suspect, quality.label_suspect_en, 1,
                           -raw * (1 - quality.suspect_factor)))
    rule_score = _clamp(sum(line.points for line in lines))
    blocked = lead.verdict is Verdict.JUNK and quality.junk is JunkPolicy.BLOCK
    probability = weight = None
    value = rule_score
    if model is not None and model.n and rules.learning.mode is not LearningMode.OFF:  # an untrained model knows nothing
        probability = model.predict(x)
        weight = blend_weight(model.n, rules.learning)
        if rules.learning.mode is LearningMode.BLEND and weight > 0 and not blocked:
            value = _clamp((1 - weight) * rule_score + weight * 100 * probability)
            lines.append(_Line(MODEL, "成交模型", "conversion model", 1, value - rule_score))
    contributions = tuple(sorted((_contribution(line, now) for line in lines if round(line.points, 1) != 0),
                                 key=lambda c: -abs(c.points)))
    live_weight = weight if rules.learning.mode is LearningMode.BLEND and weight and not blocked else 0.0
    return Scored(value, grade_of(value, lead.stage, rules), contributions, rule_score=rule_score,
                  probability=None if probability is None else round(probability, 4), blend_weight=round(live_weight, 4),
                  model_version=model.version if probability is not None and model is not None else None,
                  features=tuple(sorted(x.items())))


def _clamp(value: float) -> float:
    return round(min(100.0, max(0.0, value)), 1)


def _contribution(line: _Line, now: datetime) -> Contribution:
    points = round(line.points, 1)
    return Contribution(
        signal=line.kind, label=line.label, count=line.count, points=points, last_at=line.last_at,
        text=describe(line.label, points, line.count, last_at=line.last_at, days=line.days, now=now, lang="zh"),
        text_en=describe(line.label_en or line.label, points, line.count, last_at=line.last_at, days=line.days,
                         now=now, lang="en"),
    )


def grade_of(value: float, stage: Stage, rules: RuleSet) -> Grade:
    # O and F follow from the lifecycle, not from the score.
    if stage in (Stage.CUSTOMER, Stage.LOYAL):
        return Grade.O
    if stage is Stage.LOST:
        return Grade.F
    for grade, threshold in rules.grades.thresholds():
        if value >= threshold:
            return Grade(grade)
    return Grade.C


def add_signal(signals: tuple[Signal, ...], signal: Signal) -> tuple[Signal, ...]:
    return (signals + (signal,))[-SIGNALS_KEPT:]


def worth_emitting(before: Scored | None, after: Scored, rules: RuleSet) -> bool:
    """Whether `after` is worth telling, against what was told last (`before`)."""
    return (
        before is None
        or before.grade != after.grade
        # Scores carry one decimal; round the difference so 2.3 - 1.3 counts as the 1.0 it is.
        or round(abs(before.score - after.score), 1) >= rules.emit.min_score_delta
    )
