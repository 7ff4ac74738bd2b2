"""One person turned out to be two, or two turned out to be one: their leads, purely.

`fold` joins a merged person's lead into the survivor's from the two states alone, so a merge costs
two look-ups by _id and no scan. `rebuild` replays a person's timeline (touchpoints with the verdicts
they got at the time, outcomes, assignments, referral credits) from scratch; a split needs it,
because only the timeline tells which part of a lead belongs to whom.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from schemas.identity import TouchpointIdentified
from schemas.leads import Route, Verdict
from schemas.tasks import TaskCreated, TaskOutcomeRecorded
from services.leads.domain.intake import clean_touchpoint
from services.leads.domain.lead import (
    PROBLEMS_KEPT,
    RECENT_EVENTS_KEPT,
    Lead,
    apply,
    apply_outcome,
    assign,
    credit,
    refresh,
)
from services.leads.domain.policy import LeadPolicy
from services.leads.domain.quality import Assessment, route_of
from services.leads.domain.stages import Merged, Transition, advance

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Credit:
    referred_one_id: str
    event_id: str
    at: datetime


@dataclass(frozen=True)
class Filed:
    """One entry of a person's timeline: what happened, when, and (for a touchpoint) its verdict then."""

    at: datetime
    item: TouchpointIdentified | TaskOutcomeRecorded | TaskCreated | Credit
    assessment: Assessment | None = None

    @property
    def key(self) -> str:
        item = self.item
        return getattr(item, "event_id", None) or getattr(item, "outcome_id", None) or getattr(item, "task_id", "")


def fold(winner: Lead, loser: Lead, *, merge_id: str, at: datetime, policy: LeadPolicy) -> tuple[Lead, Transition | None]:
    """The winner's lead with the loser's folded in, and the stage change that made. Folding the same
    loser twice changes nothing."""
    if loser.one_id == winner.one_id or loser.one_id in winner.absorbed:
        return winner, None
    newer, older = (loser, winner) if (loser.last_seen_at or _EPOCH) > (winner.last_seen_at or _EPOCH) else (winner, loser)
    seen_valid = winner.seen_valid_contact or loser.seen_valid_contact
    seen_suspect = winner.seen_suspect or loser.seen_suspect
    # The rule of `lead_verdict`, on the flags of both: a valid contact wins, then suspicion, then junk.
    if seen_valid:
        verdict = Verdict.VALID
    elif seen_suspect:
        verdict = Verdict.SUSPECT
    elif Verdict.JUNK in (winner.verdict, loser.verdict):
        verdict = Verdict.JUNK
    else:
        verdict = Verdict.VALID
    reasons = tuple(dict.fromkeys(r for lead in (newer, older) if lead.verdict is verdict for r in lead.reasons))
    life, transition = advance(winner.life, Merged(merge_id, loser.life, at), policy.lifecycle, at)
    owners = [o for o in (winner.owner, loser.owner) if o is not None]
    folded = replace(
        winner,
        version=winner.version + 1,
        life=life,
        verdict=verdict,
        reasons=reasons if verdict is not Verdict.VALID else (),
        route=Route(route_of(verdict, policy.quality)),
        seen_valid_contact=seen_valid,
        seen_suspect=seen_suspect,
        problems=_union(older.problems, newer.problems, PROBLEMS_KEPT),
        store_id=newer.store_id or older.store_id,
        city=newer.city or older.city,
        province=newer.province or older.province,
        product=newer.product or older.product,
        name=newer.name or older.name,
        budget_low=newer.budget_low if newer.budget_low is not None else older.budget_low,
        budget_high=newer.budget_high if newer.budget_low is not None else older.budget_high,
        event_counts=dict(Counter(winner.event_counts) + Counter(loser.event_counts)),
        channel_counts=dict(Counter(winner.channel_counts) + Counter(loser.channel_counts)),
        phone_links=_union(winner.phone_links, loser.phone_links, 16),
        bad_phones=_union(winner.bad_phones, loser.bad_phones, 16),
        inquiries=winner.inquiries + loser.inquiries,
        repeat_inquiries=winner.repeat_inquiries + loser.repeat_inquiries,
        last_inquiry_at=max(filter(None, (winner.last_inquiry_at, loser.last_inquiry_at)), default=None),
        # The person belongs to whoever had them first.
        owner=min(owners, key=lambda o: o.since) if owners else None,
        collision=newer.collision or older.collision,
        credited=_union(winner.credited, loser.credited, 512),
        touchpoints=winner.touchpoints + loser.touchpoints,
        first_seen_at=min(filter(None, (winner.first_seen_at, loser.first_seen_at)), default=None),
        last_seen_at=max(filter(None, (winner.last_seen_at, loser.last_seen_at)), default=None),
        # The loser's ids too: a replay of something it applied reaches the winner as a duplicate.
        recent_event_ids=_union(winner.recent_event_ids, loser.recent_event_ids, RECENT_EVENTS_KEPT),
        last_trigger=later(winner.last_trigger, loser.last_trigger),
        absorbed=tuple(dict.fromkeys((*winner.absorbed, loser.one_id, *loser.absorbed))),
        on_timeline=winner.on_timeline and loser.on_timeline,
    )
    return refresh(folded, policy, at), transition


def rebuild(tenant_id: str, one_id: str, timeline: Iterable[Filed], policy: LeadPolicy) -> tuple[Lead, list[Transition]]:
    """The lead and stage history of a person with exactly this timeline, in the order things happened."""
    entries = sorted(timeline, key=lambda f: (f.at, f.key))
    lead = Lead(tenant_id=tenant_id, one_id=one_id)
    transitions: list[Transition] = []
    for entry in entries:
        item = entry.item
        match item:
            case TouchpointIdentified():
                assessment = entry.assessment or Assessment(Verdict.VALID, ())
                applied = apply(lead, item, clean_touchpoint(item, policy), assessment, policy)
            case TaskOutcomeRecorded():
                applied = apply_outcome(lead, item, policy)
            case TaskCreated():
                applied = assign(lead, item)
            case Credit():
                applied = credit(lead, referred_one_id=item.referred_one_id, event_id=item.event_id, at=item.at,
                                 policy=policy)
        lead = applied.lead
        transitions += applied.transitions
    return lead, transitions


def later(a, b):
    """The trigger that happened last (`a` on a tie)."""
    if a is None or b is None:
        return a or b
    return b if b.occurred_at > a.occurred_at else a


def _union(a: tuple[str, ...], b: tuple[str, ...], limit: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))[-limit:]
