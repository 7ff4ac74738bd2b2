"""Lead events on `leads.changes`: the lead's state after each touchpoint (state-carried, versioned)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from schemas.base import Event
from schemas.touchpoints import EventType


class Verdict(StrEnum):
    VALID = "valid"
    SUSPECT = "suspect"
    JUNK = "junk"


class Stage(StrEnum):
    ANONYMOUS = "anonymous"
    FOLLOWER = "follower"
    CONTACT = "contact"
    LEAD = "lead"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    LOYAL = "loyal"
    LOST = "lost"
    DORMANT = "dormant"
    REACTIVATED = "reactivated"


class Trigger(BaseModel):
    """The touchpoint that caused a change, as downstream services need it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    event_type: EventType
    occurred_at: datetime
    channel: str
    store_id: str | None = None
    campaign_id: str | None = None


class LeadSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    verdict: Verdict
    reasons: list[str] = []
    stage: Stage
    reachable: bool
    store_id: str | None = None
    city: str | None = None
    product: str | None = None
    name: str | None = None
    touchpoints: int
    first_seen_at: datetime
    last_seen_at: datetime


class LeadUpdated(Event):
    """The lead of `one_id` after applying `trigger`. `version` grows by one per applied touchpoint."""

    change_id: str
    tenant_id: str
    one_id: str
    version: int
    trigger: Trigger
    lead: LeadSnapshot
    previous_stage: Stage | None = None
