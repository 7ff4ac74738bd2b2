"""Request and response bodies of the HTTP API (what /docs shows)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.leads import Collision, Owner, Route, Stage, Verdict
from schemas.scores import Contribution, Grade
from schemas.tasks import Outcome, TaskStatus


class EventResultOut(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = None
    errors: list[dict[str, Any]] = []


class IngestResponse(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[EventResultOut]


class ResolveResponse(BaseModel):
    one_id: str


class IdentifierOut(BaseModel):
    link_id: str | None = Field(None, description="names the identifier for an audited reveal")
    type: str
    namespace: str | None = None
    value: str = Field(description="masked for display, e.g. 138****1111")
    linked_at: datetime
    event_id: str


class StageChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_stage: Stage | None = Field(None, alias="from")
    to_stage: Stage = Field(alias="to")
    at: datetime
    cause: str = Field(description="the touchpoint's event id, the outcome id, the merge id, or 'timer'")
    cause_type: Literal["touchpoint", "outcome", "timer", "merge", "referral"]
    detail: str = Field("", description="the event type, the outcome, the lost reason or no_activity_<days>d")
    stage_before: Stage | None = Field(None, description="for lost/dormant/reactivated: the main-path stage before")


class LeadOut(BaseModel):
    one_id: str
    lead_status: Verdict
    reasons: list[str] = []
    stage: Stage
    reachable: bool
    name: str | None = None
    city: str | None = None
    product: str | None = None
    store_id: str | None = None
    touchpoints: int
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    score: float | None = None
    grade: Grade | None = None
    route: Route = Route.SALES
    province: str | None = None
    budget_low: int | None = None
    budget_high: int | None = None
    problems: list[str] = Field([], description="what cleaning could not fix (docs/leads.md)")
    tags: list[str] = []
    stage_before: Stage | None = None
    stage_entered_at: datetime | None = None
    lost_reason: str | None = None
    inquiries: int = 0
    repeat_inquiries: int = 0
    owner: Owner | None = None
    collision: Collision | None = None
    referrer_one_id: str | None = None
    referrals: int = 0
    unreachable: bool = False
    replacement_candidate: bool = False


class SourceCountsOut(BaseModel):
    valid: int
    suspect: int
    junk: int
    total: int


class SourceQualityOut(BaseModel):
    dimension: Literal["channel", "campaign", "store"]
    value: str
    counts: SourceCountsOut
    junk_rate: float
    suspect_rate: float
    bad_rate: float
    baseline: float | None = Field(None, description="the source's usual bad rate (decayed); None: too little history")
    alerting: bool


class SourceAlertOut(BaseModel):
    dimension: str
    value: str
    bucket: datetime
    bad_rate: float
    baseline: float
    reason: str
    valid: int
    suspect: int
    junk: int


class SourcesOut(BaseModel):
    tenant_id: str
    hours: int
    sources: list[SourceQualityOut]
    alerts: list[SourceAlertOut]


class ProfileOut(LeadOut):
    identifiers: list[IdentifierOut]
    explanation: list[Contribution] = []
    owner_consultant_id: str | None = None
    open_task_id: str | None = None
    history: list[StageChange] = []
    stage_durations_s: dict[str, float] = Field({}, description="seconds spent in each stage so far, from the history")


class TaskOut(BaseModel):
    task_id: str
    one_id: str
    consultant_id: str | None = None
    routing_rule: str
    queue: str = "sales"
    status: TaskStatus
    grade: Grade
    score: float
    reason: str
    store_id: str | None = None
    lead_name: str | None = None
    product: str | None = None
    due_at: datetime
    created_at: datetime
    last_outcome: Outcome | None = None
    routing_why: str | None = Field(None, description="why routing chose this consultant, in words")
    trigger_detail: str | None = None
    version: int = 1
    first_response_at: datetime | None = None
    breached_at: datetime | None = Field(None, description="the first-response deadline was missed (and not reassigned)")
    escalated_to: list[str] = Field([], description="the store managers told about the breach")
    previous_consultant_id: str | None = None
    pooled_at: datetime | None = Field(None, description="returned to the shared pool (公海) at")
    protected_until: datetime | None = Field(None, description="a claimed lead stays with its claimer until")
    assignments: list[dict[str, Any]] = Field([], description="every assignment: consultant, rule, why, when, cause")
    accepted_at: datetime | None = None
    next_follow_up_at: datetime | None = None


class TimelineEntryOut(BaseModel):
    kind: str = Field(description="touchpoint | outcome | task | credit")
    occurred_at: datetime
    event_type: str | None = None
    channel: str | None = None
    verdict: str | None = None
    reasons: list[str] = []
    outcome: str | None = None
    reason: str | None = None
    consultant_id: str | None = None


class InboxMessageOut(BaseModel):
    message_id: str
    task_id: str
    title: str
    body: str
    url: str | None = None
    at: datetime
    read: bool = False


class PushOut(BaseModel):
    push_id: str
    channel: str
    task_version: int
    consultant_id: str | None = None
    status: str = Field(description="pending | sending | retrying | sent | failed")
    attempts: int = 0
    last_detail: str | None = None


class ClaimOut(BaseModel):
    task_id: str
    consultant_id: str
    due_at: datetime
    protected_until: datetime


class PerformanceOut(BaseModel):
    consultant_id: str
    tasks: int
    responded: int
    first_response_median_min: float | None
    sla_adherence: float | None
    conversions: int
    conversion_rate: float | None
    expected_conversions: float = Field(description="what the grades of the leads they received predict")
    conversion_index: float | None = Field(description="conversions / expected: above 1 beats their leads' grades")


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    reason: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=2000)
    next_follow_up_at: datetime | None = Field(None, description="when the consultant will follow up next (task stays open)")


class OutcomeOut(BaseModel):
    outcome_id: str
    task_id: str
    outcome: Outcome
    recorded_at: datetime


class ConsultantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    store_id: str = Field(min_length=1, max_length=64)
    region: str | None = Field(None, max_length=64)
    skills: list[str] = Field(default_factory=list, max_length=50)
    products: list[str] = Field(default_factory=list, max_length=100, description="brands or product lines; empty: all")
    capacity: int = Field(50, ge=1, le=10_000)
    active: bool = True
    on_duty: bool = Field(True, description="在岗: off duty takes no new task")
    leave: list[date] = Field(default_factory=list, max_length=366, description="local dates on leave")
    manager: bool = Field(False, description="the store manager: escalations and the store's fallback queue")
    wecom_userid: str | None = Field(None, max_length=64, description="for WeCom pushes")
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", description="for e-mail pushes")


class ConsultantOut(ConsultantIn):
    model_config = ConfigDict(extra="ignore")

    consultant_id: str
    updated_at: datetime


class FunnelStage(BaseModel):
    stage: Stage
    count: int


class OpsSummary(BaseModel):
    tenant_id: str
    total: int
    funnel: list[FunnelStage]


# ---- identity ------------------------------------------------------------------------------------
class LinkCause(BaseModel):
    rule: Literal["first_seen", "co_occurred", "split"] = Field(
        description="first_seen: the person's first identifier; co_occurred: came in one touchpoint with "
        "`via`; split: moved here by ops")
    via_link_id: str | None = None
    via_type: str | None = None
    command_id: str | None = None
    split_from: str | None = None


class IdentityLinkOut(BaseModel):
    link_id: str = Field(description="opaque id of this identifier (a keyed hash, never the value)")
    type: str
    namespace: str | None = None
    value: str = Field(description="masked, e.g. 138****1111")
    status: Literal["active", "quarantined"]
    linked_at: datetime
    event_id: str = Field(description="the touchpoint (or command) that linked it")
    cause: LinkCause


class MergeOut(BaseModel):
    loser: str
    winner: str
    cause: str
    cause_identifier_type: str | None = None
    match_score: float | None = None
    event_id: str
    merged_at: datetime


class PersonIdentityOut(BaseModel):
    one_id: str
    created_at: datetime
    split_from: str | None = None
    identifiers: list[IdentityLinkOut]
    merges: list[MergeOut] = Field(description="the persons merged into this one, oldest first, with why")


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    one_id: str = Field(min_length=1, max_length=64)
    link_ids: list[str] = Field(min_length=1, max_length=1000, description="link ids of the identifiers to move")
    reason: str = Field(default="", max_length=500)


class CommandAccepted(BaseModel):
    command_id: str
    status_url: str
    new_one_id: str | None = Field(default=None, description="the person a split creates")


class CommandStatus(BaseModel):
    command_id: str
    kind: str
    status: str = Field(description="done, or rejected: with the reason")
    at: datetime


class HeldIdentifierOut(BaseModel):
    type: str
    value: str = Field(description="masked")
    link_id: str
    owner: str | None = None
    reason: str


class ConflictOut(BaseModel):
    event_id: str
    at: datetime
    reason: str = Field(description="limit:<type>, exclusive:<type>, weak_link:<type> or merge_size_cap")
    person: str
    persons: list[str]
    held: list[HeldIdentifierOut]


class QuarantinedOut(BaseModel):
    link_id: str
    type: str
    value: str = Field(description="masked")
    one_id: str
    quarantined_at: datetime | None = None
    seen_with: int = Field(description="distinct persons it came with but could not join")


class ConflictsOut(BaseModel):
    conflicts: list[ConflictOut]
    quarantined: list[QuarantinedOut]


class RevealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=200, description="why the raw value is needed (audited)")


class RevealOut(BaseModel):
    link_id: str
    type: str
    value: str
    audit_id: str


class RevealAuditOut(BaseModel):
    audit_id: str
    one_id: str
    link_id: str
    type: str
    role: str
    consultant_id: str | None = None
    reason: str
    at: datetime


class MaskedProfileOut(BaseModel):
    name: str | None = Field(default=None, description="masked: 张*")
    birth_year: int | None = None
    city: str | None = None
    has_address: bool = False
    has_email: bool = False


class ReviewOut(BaseModel):
    review_id: str
    a: str = Field(description="one_id of one side")
    b: str = Field(description="one_id of the other side")
    score: float
    levels: dict[str, str] = Field(description="per field: exact, phonetic, typo, disagree…")
    weights: dict[str, float] = Field(description="per field: evidence in bits, + for a match, - against")
    reason: str = Field(description="grey_band, or the guardrail that kept a confident match from merging")
    at: datetime
    a_profile: MaskedProfileOut
    b_profile: MaskedProfileOut


class ReviewDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool


class ExplanationLine(BaseModel):
    """One line of a score's explanation, in the language asked for."""

    signal: str
    label: str
    count: int
    points: float
    text: str = Field(description='e.g. "试驾预约 2 天前 +25" or "test drive booked 2 days ago +25"')
    last_at: datetime | None = None


class ScoreOut(BaseModel):
    one_id: str
    score: float
    grade: Grade
    rule_score: float | None = Field(None, description="the rule score, before the learned model's share")
    probability: float | None = Field(None, description="the learned model's conversion probability")
    blend_weight: float = Field(0.0, description="the model's share in `score`; 0 in shadow mode or before enough outcomes")
    model_version: int | None = None
    rules: str | None = Field(None, description="name@version of the rule set that made the score")
    scored_at: datetime | None = None
    next_rescore_at: datetime | None = Field(None, description="when the decay timer looks at this person again")
    explanation: list[ExplanationLine] = []


class CalibrationBinOut(BaseModel):
    lower: float
    upper: float
    count: int
    predicted: float
    observed: float


class CalibrationOut(BaseModel):
    brier: float
    ece: float
    bins: list[CalibrationBinOut]


class ModelOut(BaseModel):
    """The tenant's learned model and how rules, model and blend did on outcomes none had seen."""

    tenant_id: str
    rules: str
    mode: str = Field(description="off | shadow | blend")
    model_version: int
    outcomes_learned: int
    positives: int
    blend_weight: float
    min_outcomes: int
    updated_at: datetime | None = None
    weights: dict[str, float] = Field(description="the learned weight of each feature, largest first")
    bias: float
    evaluated: int = Field(description="held-out outcomes: each scored before it trained the model")
    auc: dict[str, float | None] = Field(description="rules, model and blend")
    calibration: dict[str, CalibrationOut | None]
