"""Score events on `scores.changes`: a person's intent score, grade and why."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.base import Event
from schemas.leads import LeadSnapshot, Trigger


class Grade(StrEnum):
    H = "H"
    A = "A"
    B = "B"
    C = "C"
    O = "O"  # ordered
    F = "F"  # lost


class Contribution(BaseModel):
    """One line of a score's explanation, e.g. 试驾预约 +25."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: str
    label: str
    count: int
    points: float


class ScoreChanged(Event):
    """The score of `one_id` after `trigger`; carries the lead snapshot so notify needs no lookup."""

    change_id: str
    tenant_id: str
    one_id: str
    score: float
    grade: Grade
    previous_grade: Grade | None = None
    contributions: list[Contribution] = []
    trigger: Trigger
    lead: LeadSnapshot
    scored_at: datetime
