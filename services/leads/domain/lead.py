"""A person's lead, and the pure functions that change it: a touchpoint, a consultant's outcome, a task
assignment, a referral credit, the timer. Each returns the new lead and the stage transitions it made;
none does I/O or reads a clock (`now` is passed in or derived from the input).

The lifecycle itself is `stages.advance`; cleaning is `cleaning.clean`; the touchpoint's verdict is
`quality.assess`, made by the service (it needs windowed counters) and passed in here, so that a
rebuild after a split re-applies the verdict that was made at the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from schemas.identity import TouchpointIdentified
from schemas.leads import Collision, CollisionResolution, LeadSnapshot, Owner, Route, Stage, Trigger, Verdict
from schemas.tasks import TaskCreated, TaskOutcomeRecorded
from schemas.touchpoints import EventType, IdentifierType
from services.leads.domain.cleaning import Cleaned
from services.leads.domain.outcomes import MarkPhoneBad, map_recorded
from services.leads.domain.policy import LeadPolicy
from services.leads.domain.quality import Assessment, route_of
from services.leads.domain.replacement import is_replacement_candidate
from services.leads.domain.stages import (
    RANK,
    LifecycleState,
    Tick,
    Touch,
    Transition,
    advance,
    credit_referral,
)
from services.leads.domain.tags import ProfileFacts, derive_tags

# Replays after a crash re-deliver at most a few seconds of records; a person with more touchpoints
# than this in that time is a brushing bot, not a person.
RECENT_EVENTS_KEPT = 256
PROBLEMS_KEPT = 32
# Asking for a price, a quote, a test drive, or leaving a number: a person wanting to buy.
INQUIRY_EVENTS = frozenset({
    EventType.FORM_SUBMITTED, EventType.CALL_LOGGED, EventType.PRICE_INQUIRED, EventType.QUOTE_REQUESTED,
    EventType.TEST_DRIVE_BOOKED,
})


@dataclass(frozen=True)
class Lead:
    tenant_id: str
    one_id: str
    version: int = 0
    life: LifecycleState = field(default_factory=LifecycleState)
    verdict: Verdict = Verdict.VALID
    reasons: tuple[str, ...] = ()
    route: Route = Route.SALES
    seen_valid_contact: bool = False
    seen_suspect: bool = False
    problems: tuple[str, ...] = ()  # cleaning problems of the person's touchpoints, newest last
    store_id: str | None = None
    city: str | None = None
    province: str | None = None
    product: str | None = None
    name: str | None = None
    budget_low: int | None = None
    budget_high: int | None = None
    tags: tuple[str, ...] = ()
    event_counts: Mapping[str, int] = field(default_factory=dict)
    channel_counts: Mapping[str, int] = field(default_factory=dict)
    phone_links: tuple[str, ...] = ()  # link ids of the person's usable phones
    bad_phones: tuple[str, ...] = ()  # of those, reported invalid by a consultant
    inquiries: int = 0
    repeat_inquiries: int = 0
    last_inquiry_at: datetime | None = None
    owner: Owner | None = None
    collision: Collision | None = None
    credited: tuple[str, ...] = ()  # referred persons already credited to this one
    replacement_candidate: bool = False
    touchpoints: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    # Touchpoint, outcome, task and credit ids applied lately: a replay of any of them changes nothing.
    recent_event_ids: tuple[str, ...] = ()
    # The newest touchpoint (by occurred_at): the trigger of a change that something else makes.
    last_trigger: Trigger | None = None
    # Persons merged into this one (transitively): their timeline entries are this person's too.
    absorbed: tuple[str, ...] = ()
    # False for a lead older than the timeline, which a split cannot rebuild.
    on_timeline: bool = True

    @property
    def stage(self) -> Stage:
        return self.life.stage

    @property
    def reachable(self) -> bool:
        """A consultant can call: a usable phone is known and not every one of them was reported invalid."""
        return self.life.reachable and bool(set(self.phone_links) - set(self.bad_phones))

    def snapshot(self) -> LeadSnapshot:
        life = self.life
        return LeadSnapshot(
            verdict=self.verdict,
            reasons=list(self.reasons),
            stage=self.stage,
            reachable=self.reachable,
            store_id=self.store_id,
            city=self.city,
            product=self.product,
            name=self.name,
            touchpoints=self.touchpoints,
            first_seen_at=self.first_seen_at or life.entered_at,
            last_seen_at=self.last_seen_at or life.entered_at,
            route=self.route,
            province=self.province,
            budget_low=self.budget_low,
            budget_high=self.budget_high,
            problems=list(self.problems),
            tags=list(self.tags),
            stage_before=life.stage_before,
            stage_entered_at=life.entered_at,
            lost_reason=life.lost_reason,
            inquiries=self.inquiries,
            repeat_inquiries=self.repeat_inquiries,
            last_inquiry_at=self.last_inquiry_at,
            owner=self.owner,
            collision=self.collision,
            referrer_one_id=life.referrer_one_id,
            referrals=life.referrals,
            unreachable=life.unreachable,
            replacement_candidate=self.replacement_candidate,
        )


@dataclass(frozen=True)
class Applied:
    lead: Lead
    transitions: tuple[Transition, ...] = ()
    new: bool = True  # False: a replay, nothing changed
    repeat_inquiry: bool = False
    marked_bad: tuple[MarkPhoneBad, ...] = ()
    problems: tuple[str, ...] = ()


def trigger_of(event: TouchpointIdentified) -> Trigger:
    tp = event.touchpoint
    return Trigger(
        event_id=tp.event_id,
        event_type=tp.event_type,
        occurred_at=tp.occurred_at,
        channel=tp.source.channel,
        store_id=tp.source.store_id,
        campaign_id=tp.source.campaign_id,
    )


def now_of(event: TouchpointIdentified) -> datetime:
    """The moment a touchpoint is applied at, from the event itself: replays and rebuilds agree."""
    return max(event.identified_at, event.touchpoint.occurred_at)


def lead_verdict(lead: Lead, assessment: Assessment, gave_contact: bool) -> tuple[Verdict, tuple[str, ...], bool, bool]:
    """The person's verdict after one more touchpoint: a person who ever gave a real contact in a clean
    submission is a valid lead, whatever bots later did with their number; then suspicion; then junk."""
    seen_valid = lead.seen_valid_contact or (gave_contact and assessment.verdict is Verdict.VALID)
    seen_suspect = lead.seen_suspect or assessment.verdict is Verdict.SUSPECT
    if seen_valid:
        return Verdict.VALID, (), seen_valid, seen_suspect
    if seen_suspect:
        reasons = assessment.reasons if assessment.verdict is Verdict.SUSPECT else lead.reasons
        return Verdict.SUSPECT, tuple(reasons) or lead.reasons, seen_valid, seen_suspect
    if assessment.verdict is Verdict.JUNK or lead.verdict is Verdict.JUNK:
        return Verdict.JUNK, tuple(assessment.reasons) or lead.reasons, seen_valid, seen_suspect
    return Verdict.VALID, (), seen_valid, seen_suspect


def apply(lead: Lead, event: TouchpointIdentified, cleaned: Cleaned, assessment: Assessment,
          policy: LeadPolicy) -> Applied:
    """One identified touchpoint, cleaned and assessed, applied to the person's lead."""
    if event.event_id in lead.recent_event_ids:
        return Applied(lead, new=False)
    tp = event.touchpoint
    now = now_of(event)
    phones = tuple(i.link_id for i in event.identifiers if i.type is IdentifierType.PHONE)
    usable = cleaned.reachable and assessment.verdict is not Verdict.JUNK
    verdict, reasons, seen_valid, seen_suspect = lead_verdict(lead, assessment, usable)
    attrs = tp.typed_attributes()
    referrer = getattr(attrs, "referrer_one_id", None)
    life, transition = advance(
        lead.life,
        Touch(tp.event_id, tp.event_type, tp.occurred_at, reachable=usable, product=cleaned.product,
              referrer_one_id=referrer if referrer != lead.one_id else None),
        policy.lifecycle, now,
    )
    updated = replace(
        lead,
        version=lead.version + 1,
        life=life,
        verdict=verdict,
        reasons=reasons,
        route=Route(route_of(verdict, policy.quality)),
        seen_valid_contact=seen_valid,
        seen_suspect=seen_suspect,
        problems=_newest(lead.problems, cleaned.problems, PROBLEMS_KEPT),
        store_id=tp.source.store_id or lead.store_id,
        city=cleaned.city or lead.city,
        province=cleaned.province or lead.province,
        product=cleaned.product or lead.product,
        name=cleaned.name or (cleaned.surname if cleaned.title_only else None) or lead.name,
        budget_low=cleaned.budget_low if cleaned.budget_low is not None else lead.budget_low,
        budget_high=cleaned.budget_high if cleaned.budget_low is not None else lead.budget_high,
        event_counts=_plus(lead.event_counts, str(tp.event_type)),
        channel_counts=_plus(lead.channel_counts, tp.source.channel),
        phone_links=_newest(lead.phone_links, phones if usable else (), 16),
        touchpoints=lead.touchpoints + 1,
        first_seen_at=min(filter(None, (lead.first_seen_at, tp.occurred_at))),
        last_seen_at=max(filter(None, (lead.last_seen_at, tp.occurred_at))),
        recent_event_ids=_newest(lead.recent_event_ids, (tp.event_id,), RECENT_EVENTS_KEPT),
        last_trigger=_later(lead.last_trigger, trigger_of(event)),
    )
    repeat = False
    if tp.event_type in INQUIRY_EVENTS:
        last = lead.last_inquiry_at
        repeat = last is not None and abs(tp.occurred_at - last) <= policy.repeat_window
        updated = replace(
            updated,
            inquiries=lead.inquiries + (0 if repeat else 1),
            repeat_inquiries=lead.repeat_inquiries + (1 if repeat else 0),
            last_inquiry_at=max(filter(None, (last, tp.occurred_at))),
            collision=_collision(updated, event, policy) or lead.collision,
        )
        if updated.collision is not lead.collision and updated.collision.resolution is CollisionResolution.REASSIGN:
            updated = replace(updated, owner=None)  # the inquiring store's routing takes over
    updated = refresh(updated, policy, now)
    return Applied(updated, (transition,) if transition else (), repeat_inquiry=repeat)


def _collision(lead: Lead, event: TouchpointIdentified, policy: LeadPolicy) -> Collision | None:
    store = event.touchpoint.source.store_id
    owner = lead.owner
    if owner is None or store is None or owner.store_id is None or owner.store_id == store:
        return None
    return Collision(owner_consultant_id=owner.consultant_id, owner_store_id=owner.store_id, store_id=store,
                     event_id=event.event_id, at=event.touchpoint.occurred_at,
                     resolution=CollisionResolution(policy.collision.value))


def apply_outcome(lead: Lead, outcome: TaskOutcomeRecorded, policy: LeadPolicy) -> Applied:
    """A consultant's outcome: the lifecycle moves, an invalid number is marked bad."""
    if outcome.outcome_id in lead.recent_event_ids:
        return Applied(lead, new=False)
    usable = tuple(p for p in lead.phone_links if p not in lead.bad_phones)
    mapping = map_recorded(outcome, policy.lifecycle, phone_link_ids=usable)
    life, transition = lead.life, None
    if mapping.signal is not None:
        life, transition = advance(lead.life, mapping.signal, policy.lifecycle, outcome.recorded_at)
    bad = tuple(e for e in mapping.effects if isinstance(e, MarkPhoneBad))
    updated = replace(
        lead,
        version=lead.version + 1,
        life=life,
        bad_phones=_newest(lead.bad_phones, tuple(e.link_id for e in bad), 16),
        problems=_newest(lead.problems, mapping.problems, PROBLEMS_KEPT),
        recent_event_ids=_newest(lead.recent_event_ids, (outcome.outcome_id,), RECENT_EVENTS_KEPT),
    )
    updated = refresh(updated, policy, outcome.recorded_at)
    return Applied(updated, (transition,) if transition else (), marked_bad=bad, problems=mapping.problems)


def mark_phone_bad(lead: Lead, link_id: str, cause: str) -> Lead:
    """Another person's consultant reported this phone invalid (tenant-wide); `cause` is the outcome id."""
    if link_id in lead.bad_phones or cause in lead.recent_event_ids:
        return lead
    return replace(lead, version=lead.version + 1, bad_phones=_newest(lead.bad_phones, (link_id,), 16),
                   recent_event_ids=_newest(lead.recent_event_ids, (cause,), RECENT_EVENTS_KEPT))


def assign(lead: Lead, task: TaskCreated) -> Applied:
    """A task was assigned: its consultant owns the person unless somebody already does."""
    if task.task_id in lead.recent_event_ids:
        return Applied(lead, new=False)
    owner = lead.owner
    if owner is None and task.consultant_id is not None and task.queue == "sales":
        owner = Owner(consultant_id=task.consultant_id, store_id=task.store_id, since=task.created_at)
    updated = replace(lead, version=lead.version + 1, owner=owner,
                      recent_event_ids=_newest(lead.recent_event_ids, (task.task_id,), RECENT_EVENTS_KEPT))
    return Applied(updated, new=owner != lead.owner)


def credit(lead: Lead, *, referred_one_id: str, event_id: str, at: datetime, policy: LeadPolicy) -> Applied:
    """A person this one referred showed up: one referral more; a customer becomes loyal."""
    if referred_one_id in lead.credited or referred_one_id == lead.one_id:
        return Applied(lead, new=False)
    life, transition = credit_referral(lead.life, event_id=event_id, referred_one_id=referred_one_id, at=at,
                                       policy=policy.lifecycle, now=at)
    updated = replace(lead, version=lead.version + 1, life=life, credited=_newest(lead.credited, (referred_one_id,), 512))
    updated = refresh(updated, policy, at)
    return Applied(updated, (transition,) if transition else ())


def tick(lead: Lead, policy: LeadPolicy, now: datetime) -> Applied:
    """The timer: dormancy and replacement candidacy as of `now`."""
    life, transition = advance(lead.life, Tick(), policy.lifecycle, now)
    updated = refresh(replace(lead, life=life), policy, now)
    if transition is None and updated == lead:
        return Applied(lead, new=False)
    return Applied(replace(updated, version=lead.version + 1), (transition,) if transition else ())


def refresh(lead: Lead, policy: LeadPolicy, now: datetime) -> Lead:
    """What is derived from the rest: tags and replacement candidacy."""
    candidate = bool(is_replacement_candidate(lead.life, policy.replacement, now))
    facts = ProfileFacts.of(
        lead.life,
        event_counts=lead.event_counts,
        channel_counts=lead.channel_counts,
        attributes={k: v for k, v in (("product", lead.product), ("city", lead.city), ("province", lead.province),
                                      ("store_id", lead.store_id)) if v},
        budget_low=lead.budget_low,
        budget_high=lead.budget_high,
    )
    tags = derive_tags(facts, policy.tag_rules) + (("置换候选",) if candidate else ())
    return replace(lead, tags=tags, replacement_candidate=candidate)


def due_at(lead: Lead, policy: LeadPolicy, now: datetime) -> datetime | None:
    """When the timer must look at this person next: dormancy, or a purchase ageing into a replacement.
    A replacement time already past at `now` is not waited for: the check at `now` decided it, and only
    new activity (a service visit, which refreshes candidacy itself) can change that."""
    life = lead.life
    times = []
    if life.entered_at is not None and life.stage not in (Stage.LOST, Stage.DORMANT):
        after = policy.lifecycle.dormant_after.get(life.main_stage)
        if after is not None:
            times.append(max(filter(None, (life.last_activity_at, life.entered_at))) + after)
    if life.purchased_at is not None and not lead.replacement_candidate and RANK.get(life.main_stage, 0) >= RANK[Stage.CUSTOMER]:
        aged = life.purchased_at + policy.replacement.cycle_of(life.purchased_product)
        if aged > now:
            times.append(aged)
    return min(times, default=None)


def _plus(counts: Mapping[str, int], key: str) -> dict[str, int]:
    return {**counts, key: counts.get(key, 0) + 1}


def _newest(kept: tuple[str, ...], new: tuple[str, ...] | list[str], limit: int) -> tuple[str, ...]:
    """`kept` then `new`, each once, the newest `limit`."""
    return tuple(dict.fromkeys((*kept, *new)))[-limit:] if new else kept


def _later(a: Trigger | None, b: Trigger) -> Trigger:
    return b if a is None or b.occurred_at >= a.occurred_at else a


__all__ = ["Applied", "INQUIRY_EVENTS", "Lead", "RECENT_EVENTS_KEPT", "Transition", "apply",
           "apply_outcome", "assign", "credit", "due_at", "mark_phone_bad", "now_of", "refresh", "tick", "trigger_of"]
