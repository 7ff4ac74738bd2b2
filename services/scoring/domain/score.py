"""Pure scoring: signals in, score, grade and explanation out. `now` is always passed in."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from schemas.leads import LeadSnapshot, Stage, Verdict
from schemas.scores import Contribution, Grade
from schemas.touchpoints import EventType
from services.scoring.domain.rules import RuleSet

SIGNALS_KEPT = 200


@dataclass(frozen=True)
class Signal:
    event_id: str
    event_type: EventType
    occurred_at: datetime


@dataclass(frozen=True)
class Scored:
    score: float
    grade: Grade
    contributions: tuple[Contribution, ...]


def decay(age_days: float, half_life_days: float) -> float:
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


def score(signals: tuple[Signal, ...], lead: LeadSnapshot, rules: RuleSet, now: datetime) -> Scored:
    per_type: dict[EventType, list[float]] = defaultdict(list)
    for signal in signals:
        rule = rules.signals.get(signal.event_type)
        if rule:
            age = (now - signal.occurred_at).total_seconds() / 86_400
            per_type[signal.event_type].append(rule.weight * decay(age, rule.half_life_days))
    contributions = []
    for event_type, points in per_type.items():
        rule = rules.signals[event_type]
        total = sum(points)
        capped = max(total, rule.cap) if rule.cap < 0 else min(total, rule.cap)
        contributions.append(Contribution(signal=event_type.value, label=rule.label, count=len(points), points=round(capped, 1)))
    contributions.sort(key=lambda c: -abs(c.points))
    raw = sum(c.points for c in contributions)
    if lead.verdict is Verdict.JUNK:
        raw = 0.0
    elif lead.verdict is Verdict.SUSPECT:
        raw *= rules.suspect_factor
    value = round(min(100.0, max(0.0, raw)), 1)
    return Scored(value, grade_of(value, lead.stage, rules), tuple(contributions))


def grade_of(value: float, stage: Stage, rules: RuleSet) -> Grade:
    # O and F follow from the lifecycle, not from the score.
    if stage in (Stage.CUSTOMER, Stage.LOYAL):
        return Grade.O
    if stage is Stage.LOST:
        return Grade.F
    for grade, threshold in rules.grade_thresholds:
        if value >= threshold:
            return Grade(grade)
    return Grade.C


def add_signal(signals: tuple[Signal, ...], signal: Signal) -> tuple[Signal, ...]:
    return (signals + (signal,))[-SIGNALS_KEPT:]


def worth_emitting(before: Scored | None, after: Scored, rules: RuleSet) -> bool:
    return (
        before is None
        or before.grade != after.grade
        # Scores carry one decimal; round the difference so 2.3 - 1.3 counts as the 1.0 it is.
        or round(abs(before.score - after.score), 1) >= rules.min_score_delta
    )
