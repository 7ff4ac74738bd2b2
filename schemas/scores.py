"""Score events on `scores.changes`: a person's intent score, grade and why."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

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

    signal: str  # an event type, outcome:<outcome>, repeat_inquiry, inactivity, fit:*, quality:* or model
    label: str
    count: int
    points: float
    # Since v1.1 (optional): the newest occurrence, and the whole line in words, in Chinese and English
    # ("试驾预约 2 天前 +25", "价格咨询 ×3 +18", "15 天无互动 −10"), as of `scored_at`.
    last_at: datetime | None = None
    text: str | None = None
    text_en: str | None = None


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
    # Since v1.1 (optional): what made this change, and how the score was made.
    cause: Literal["lead", "outcome", "decay", "rescore", "merge", "split"] = "lead"
    rules: str | None = None  # name@version of the rule set
    rule_score: float | None = None  # the rule score before the model's share
    probability: float | None = None  # the learned model's conversion probability (also in shadow mode)
    blend_weight: float = 0.0  # the model's share in `score`
    model_version: int | None = None
