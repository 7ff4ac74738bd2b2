"""A person's lead: state and the pure function that applies one identified touchpoint to it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from schemas.identity import TouchpointIdentified
from schemas.leads import LeadSnapshot, Stage, Trigger, Verdict
from schemas.touchpoints import EventType, IdentifierType
from services.leads.domain.lifecycle import next_stage
from services.leads.domain.verdict import assess

# Replays after a crash re-deliver at most a few seconds of records; a person with more touchpoints
# than this in that time is a brushing bot, not a person.
RECENT_EVENTS_KEPT = 256
REACHABLE_TYPES = frozenset({IdentifierType.PHONE})


@dataclass(frozen=True)
class Transition:
    from_stage: Stage | None
    to_stage: Stage
    at: datetime
    cause_event_id: str  # the touchpoint, or the merge (merge_id) that moved the stage
    cause_event_type: EventType | str  # an event type, or "merged"


@dataclass(frozen=True)
class Lead:
    tenant_id: str
    one_id: str
    version: int = 0
    stage: Stage = Stage.ANONYMOUS
    verdict: Verdict = Verdict.VALID
    reasons: tuple[str, ...] = ()
    reachable: bool = False
    seen_valid_contact: bool = False
    seen_suspect: bool = False
    store_id: str | None = None
    city: str | None = None
    product: str | None = None
    name: str | None = None
    touchpoints: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    recent_event_ids: tuple[str, ...] = field(default=())
    # The newest touchpoint (by occurred_at): the trigger of a change that a merge or split makes.
    last_trigger: Trigger | None = None
    # Persons merged into this one (transitively): their timeline entries are this person's too.
    absorbed: tuple[str, ...] = ()
    # False for a lead older than the touchpoint timeline, which a split cannot rebuild.
    on_timeline: bool = True

    def snapshot(self) -> LeadSnapshot:
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
            first_seen_at=self.first_seen_at,
            last_seen_at=self.last_seen_at,
        )


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


def apply(lead: Lead | None, event: TouchpointIdentified) -> tuple[Lead, Transition | None, bool]:
    """Return the new lead, the stage transition if any, and whether the event was new to this lead."""
    lead = lead or Lead(tenant_id=event.tenant_id, one_id=event.one_id)
    if event.event_id in lead.recent_event_ids:
        return lead, None, False
    tp = event.touchpoint
    attrs = tp.typed_attributes()
    has_contact = any(i.type in REACHABLE_TYPES for i in tp.identifiers)
    reachable = lead.reachable or has_contact
    verdict, reasons = assess(event)
    seen_valid_contact = lead.seen_valid_contact or (has_contact and verdict is Verdict.VALID)
    seen_suspect = lead.seen_suspect or verdict is Verdict.SUSPECT
    # A person who ever gave a real, cleanly submitted contact is a valid lead; junk and bot-like
    # touchpoints from the same person do not undo that.
    if seen_valid_contact:
        lead_verdict, lead_reasons = Verdict.VALID, ()
    elif seen_suspect:
        lead_verdict, lead_reasons = Verdict.SUSPECT, tuple(reasons) or lead.reasons
    elif verdict is Verdict.JUNK or lead.verdict is Verdict.JUNK:
        lead_verdict, lead_reasons = Verdict.JUNK, tuple(reasons) or lead.reasons
    else:
        lead_verdict, lead_reasons = Verdict.VALID, ()

    stage = next_stage(lead.stage, tp.event_type, reachable)
    transition = (
        Transition(lead.stage if lead.version else None, stage, tp.occurred_at, tp.event_id, tp.event_type)
        if stage != lead.stage or lead.version == 0
        else None
    )
    first = min(filter(None, (lead.first_seen_at, tp.occurred_at)))
    last = max(filter(None, (lead.last_seen_at, tp.occurred_at)))
    newest = lead.last_trigger
    last_trigger = trigger_of(event) if newest is None or tp.occurred_at >= newest.occurred_at else newest
    updated = replace(
        lead,
        version=lead.version + 1,
        stage=stage,
        verdict=lead_verdict,
        reasons=lead_reasons,
        reachable=reachable,
        seen_valid_contact=seen_valid_contact,
        seen_suspect=seen_suspect,
        store_id=tp.source.store_id or lead.store_id,
        city=attrs.city or lead.city,
        product=attrs.car_model or attrs.product or lead.product,
        name=attrs.name or lead.name,
        touchpoints=lead.touchpoints + 1,
        first_seen_at=first,
        last_seen_at=last,
        recent_event_ids=(lead.recent_event_ids + (tp.event_id,))[-RECENT_EVENTS_KEPT:],
        last_trigger=last_trigger,
    )
    return updated, transition, True
