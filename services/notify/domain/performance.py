"""Consultant performance for managers: first response, SLA adherence, and conversion against the
conversion the grades of their leads would predict, so a consultant handed cold leads is not ranked
below one handed hot ones. Pure."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CONVERTED = frozenset({"won", "ordered"})


@dataclass(frozen=True)
class Performance:
    consultant_id: str
    tasks: int
    responded: int
    first_response_median_min: float | None
    sla_met: int
    sla_due: int  # tasks whose deadline passed or that were answered: the SLA could be judged
    conversions: int
    expected_conversions: float  # sum over their tasks of the tenant's conversion rate for the task's grade

    @property
    def sla_adherence(self) -> float | None:
        return self.sla_met / self.sla_due if self.sla_due else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.tasks if self.tasks else None

    @property
    def conversion_index(self) -> float | None:
        """Actual over expected conversions: above 1, better than their leads' grades predict."""
        return self.conversions / self.expected_conversions if self.expected_conversions else None


def _converted(task: Mapping[str, Any]) -> bool:
    return any(o.get("outcome") in CONVERTED for o in task.get("outcomes", ()))


def grade_rates(tasks: Iterable[Mapping[str, Any]], prior: float = 1.0) -> dict[str, float]:
    """The tenant's conversion rate per grade over these tasks, smoothed towards the overall rate
    (`prior` pseudo-tasks), so a grade with few tasks does not swing anybody's expectation."""
    tasks = list(tasks)
    overall = sum(_converted(t) for t in tasks) / len(tasks) if tasks else 0.0
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in tasks:
        c = counts[t["grade"]]
        c[0] += _converted(t)
        c[1] += 1
    return {g: (won + prior * overall) / (n + prior) for g, (won, n) in counts.items()}


def performance(tasks: Iterable[Mapping[str, Any]], now: datetime) -> list[Performance]:
    """Per consultant, over the sales tasks assigned to them; best conversion index first."""
    tasks = [t for t in tasks if t.get("consultant_id") and t.get("queue", "sales") == "sales"]
    rates = grade_rates(tasks)
    by: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for t in tasks:
        by[t["consultant_id"]].append(t)
    out = []
    for cid, mine in by.items():
        minutes = [(t["first_response_at"] - (t.get("assigned_at") or t["created_at"])).total_seconds() / 60
                   for t in mine if t.get("first_response_at") is not None]
        judged = [t for t in mine if t.get("first_response_at") is not None or t["due_at"] <= now]
        met = [t for t in judged if t.get("first_response_at") is not None and t["first_response_at"] <= t["due_at"]]
        out.append(Performance(
            consultant_id=cid, tasks=len(mine), responded=len(minutes),
            first_response_median_min=round(statistics.median(minutes), 1) if minutes else None,
            sla_met=len(met), sla_due=len(judged), conversions=sum(_converted(t) for t in mine),
            expected_conversions=round(sum(rates.get(t["grade"], 0.0) for t in mine), 3),
        ))
    return sorted(out, key=lambda p: (-(p.conversion_index or 0.0), p.consultant_id))
