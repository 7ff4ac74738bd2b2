"""One person turned out to be two, or two turned out to be one: their leads, purely.

`fold` joins a merged person's lead into the survivor's from the two states alone, so a merge costs
two look-ups by _id and no scan. `rebuild` folds a person's touchpoints with `apply` from scratch;
a split needs it, because only the touchpoints tell which part of a lead belongs to whom.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from schemas.identity import TouchpointIdentified
from schemas.leads import Trigger, Verdict
from services.leads.domain.lead import RECENT_EVENTS_KEPT, Lead, Transition, apply
from services.leads.domain.lifecycle import further

MERGED = "merged"  # the cause type of a stage change that a merge made
_EPOCH = datetime.min.replace(tzinfo=UTC)


def fold(winner: Lead, loser: Lead) -> Lead:
    """The winner's lead with the loser's folded in. Folding the same loser twice changes nothing."""
    if loser.one_id == winner.one_id or loser.one_id in winner.absorbed:
        return winner
    newer, older = (loser, winner) if (loser.last_seen_at or _EPOCH) > (winner.last_seen_at or _EPOCH) else (winner, loser)
    seen_valid_contact = winner.seen_valid_contact or loser.seen_valid_contact
    seen_suspect = winner.seen_suspect or loser.seen_suspect
    # The rule of `apply`, on the flags of both: a valid contact wins, then suspicion, then junk.
    if seen_valid_contact:
        verdict = Verdict.VALID
    elif seen_suspect:
        verdict = Verdict.SUSPECT
    elif Verdict.JUNK in (winner.verdict, loser.verdict):
        verdict = Verdict.JUNK
    else:
        verdict = Verdict.VALID
    reasons = tuple(dict.fromkeys(r for lead in (newer, older) if lead.verdict is verdict for r in lead.reasons))
    return replace(
        winner,
        version=winner.version + 1,
        stage=further(winner.stage, loser.stage) if winner.touchpoints else loser.stage,
        verdict=verdict,
        reasons=reasons if verdict is not Verdict.VALID else (),
        reachable=winner.reachable or loser.reachable,
        seen_valid_contact=seen_valid_contact,
        seen_suspect=seen_suspect,
        store_id=newer.store_id or older.store_id,
        city=newer.city or older.city,
        product=newer.product or older.product,
        name=newer.name or older.name,
        touchpoints=winner.touchpoints + loser.touchpoints,
        first_seen_at=min(filter(None, (winner.first_seen_at, loser.first_seen_at)), default=None),
        last_seen_at=max(filter(None, (winner.last_seen_at, loser.last_seen_at)), default=None),
        # The loser's ids too: a replay of a touchpoint it applied reaches the winner as a duplicate.
        recent_event_ids=tuple(dict.fromkeys(winner.recent_event_ids + loser.recent_event_ids))[-RECENT_EVENTS_KEPT:],
        last_trigger=later(winner.last_trigger, loser.last_trigger),
        absorbed=tuple(dict.fromkeys((*winner.absorbed, loser.one_id, *loser.absorbed))),
        on_timeline=winner.on_timeline and loser.on_timeline,
    )


def merge_transition(before: Lead | None, after: Lead, *, at: datetime, merge_id: str) -> Transition | None:
    """The stage change a merge made, if it made one."""
    if before is not None and before.touchpoints and before.stage == after.stage:
        return None
    return Transition(before.stage if before and before.touchpoints else None, after.stage, at, merge_id, MERGED)


def rebuild(tenant_id: str, one_id: str, events: Iterable[TouchpointIdentified]) -> tuple[Lead, list[Transition]]:
    """The lead and stage history of a person with exactly these touchpoints, in the order they happened."""
    events = list(events)
    lead = Lead(tenant_id=tenant_id, one_id=one_id)
    transitions = []
    for event in sorted(events, key=lambda e: (e.touchpoint.occurred_at, e.event_id)):
        lead, transition, _ = apply(lead, event)
        if transition:
            transitions.append(transition)
    # Replays concern what arrived last, not what happened last.
    arrived = sorted(events, key=lambda e: (e.identified_at, e.event_id))
    return replace(lead, recent_event_ids=tuple(e.event_id for e in arrived)[-RECENT_EVENTS_KEPT:]), transitions


def later(a: Trigger | None, b: Trigger | None) -> Trigger | None:
    """The trigger that happened last (`a` on a tie)."""
    if a is None or b is None:
        return a or b
    return b if b.occurred_at > a.occurred_at else a
