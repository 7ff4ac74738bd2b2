"""Lead events. `leads.changes`: the lead's state after each change (state-carried, versioned).
`leads.alerts`: a source (channel, campaign or store) whose junk and suspect rate jumped above its baseline."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from typing import Literal

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


class Route(StrEnum):
    """Who a lead goes to: sales, a verification queue (suspect leads, by policy), or nobody (junk)."""

    SALES = "sales"
    VERIFICATION = "verification"
    NONE = "none"


class CollisionResolution(StrEnum):
    KEEP_OWNER = "keep_owner"
    REASSIGN = "reassign"
    ASK_OPS = "ask_ops"


class Owner(BaseModel):
    """The consultant (and their store) who owns the person: the first one a task was assigned to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    consultant_id: str
    store_id: str | None = None
    since: datetime


class Collision(BaseModel):
    """撞单: a person owned by one store's consultant inquired at another store of the same tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner_consultant_id: str
    owner_store_id: str | None = None
    store_id: str
    event_id: str
    at: datetime
    resolution: CollisionResolution


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
    # Since v1.1 (all optional, so v1 readers and writers stay compatible):
    route: Route = Route.SALES
    province: str | None = None
    budget_low: int | None = None
    budget_high: int | None = None  # None with a low: no upper bound
    problems: list[str] = []  # what cleaning could not fix (codes; docs/leads.md)
    tags: list[str] = []
    stage_before: Stage | None = None  # in lost, dormant or reactivated: the main-path stage held before
    stage_entered_at: datetime | None = None
    lost_reason: str | None = None
    inquiries: int = 0  # distinct inquiries (a repeat within the tenant's window is not a new one)
    repeat_inquiries: int = 0
    last_inquiry_at: datetime | None = None
    owner: Owner | None = None
    collision: Collision | None = None
    referrer_one_id: str | None = None
    referrals: int = 0  # persons this person referred who showed up
    unreachable: bool = False  # consultants could not get through, several times in a row
    replacement_candidate: bool = False  # 置换: an old enough purchase and regular service visits


class LeadUpdated(Event):
    """The lead of `one_id` after applying `trigger`. `version` grows by one per applied touchpoint."""

    change_id: str
    tenant_id: str
    one_id: str
    version: int
    trigger: Trigger
    lead: LeadSnapshot
    previous_stage: Stage | None = None
    # What made this change (since v1.1): a touchpoint (the trigger), or an outcome, the dormancy
    # timer, a merge, a split, a task assignment or a referral credit, with the trigger then being the
    # person's newest touchpoint.
    cause: Literal["touchpoint", "outcome", "timer", "merge", "split", "assignment", "referral"] = "touchpoint"
    cause_id: str | None = None
    repeat_inquiry: bool = False  # the trigger is the same person asking again within the window


class SourceCounts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    valid: int
    suspect: int
    junk: int


class SourceAlerted(Event):
    """A source's junk and suspect rate in one hour jumped above its baseline (the fake-prosperity detector)."""

    alert_id: str
    tenant_id: str
    dimension: Literal["channel", "campaign", "store"]
    value: str
    bucket: datetime  # the hour
    counts: SourceCounts
    bad_rate: float
    baseline: float
    reason: str
    raised_at: datetime
