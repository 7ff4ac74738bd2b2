"""leads use cases: apply an identified touchpoint to the person's lead; fold, split and erase persons
as identity decides; answer lead queries."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

from leadflow.runtime import metrics
from leadflow.runtime.messages import Handled, Outgoing
from schemas.identity import PersonErased, PersonsMerged, PersonSplit, TouchpointIdentified
from schemas.leads import LeadUpdated, Stage, Verdict
from schemas.topics import LEADS_CHANGES
from services.leads.adapters.repository import LeadRepository, Stored, same_lead
from services.leads.domain.lead import Lead, apply, trigger_of
from services.leads.domain.merging import MERGED, fold, merge_transition, rebuild

_CHANGE_NS = uuid.UUID("0b8f1f9e-7a43-4c52-9d0e-5f2b8e0c6a11")


def _count(tenant: str, event: TouchpointIdentified, lead: Lead, transition) -> None:
    channel = event.touchpoint.source.channel
    metrics.LEAD_VERDICTS.labels(tenant, lead.verdict.value, channel).inc()
    for reason in lead.reasons:
        metrics.LEAD_REASONS.labels(tenant, reason, channel).inc()
    if transition:
        metrics.STAGE_TRANSITIONS.labels(tenant, str(transition.from_stage or "none"), str(transition.to_stage)).inc()


class LeadService:
    def __init__(self, repo: LeadRepository) -> None:
        self.repo = repo
        # A worker's two agents (touchpoints, identity changes) write the same documents, and Faust gives
        # the same partition of both topics to the same worker: one change at a time keeps every
        # document single-writer (`leadflow/runtime/state.py`).
        self._writing = asyncio.Lock()

    # ---- touchpoints -----------------------------------------------------------------------------
    async def on_identified(self, event: TouchpointIdentified) -> Handled:
        async with self._writing:
            return await self._identified(event)

    async def _identified(self, event: TouchpointIdentified) -> Handled:
        tenant = event.tenant_id
        # A merged person's touchpoint goes to whom they live on as.
        target, stored = await self.repo.resolve(tenant, event.one_id)
        if stored is None and await self.repo.is_erased(tenant, target):
            return Handled()  # identified before the person was erased: nothing may bring them back
        # The timeline decides for a touchpoint it knows: a split may have given it to somebody else.
        filed_under = await self.repo.add_touchpoint(event, target)
        if filed_under != target:
            target, stored = await self.repo.resolve(tenant, filed_under)
            if target != filed_under:
                await self.repo.move_touchpoint(tenant, event.event_id, target)
        before = stored.lead if stored else None
        lead, transition, applied = apply(before or Lead(tenant_id=tenant, one_id=target), event)
        if applied:
            if transition:  # written before the lead, so that an erasure that finds the lead finds it too
                await self.repo.record_transition(lead, transition)
            await self.repo.save(lead)
            _count(tenant, event, lead, transition)
            if before is None and await self.repo.is_erased(tenant, target):
                await self.repo.forget(tenant, target, event.event_id)  # erased meanwhile (by another worker)
                return Handled()
        # Emitted even for a replay: the first attempt may have died between the write and the send.
        # The change id is the same either way, so consumers recognise it.
        change = LeadUpdated(
            change_id=str(uuid.uuid5(_CHANGE_NS, f"{tenant}\x1f{event.event_id}")),
            tenant_id=tenant,
            one_id=target,
            version=lead.version,
            trigger=trigger_of(event),
            lead=lead.snapshot(),
            previous_stage=transition.from_stage if transition else None,
        )
        return Handled([Outgoing(LEADS_CHANGES, target, change)])

    # ---- identity changes ------------------------------------------------------------------------
    async def on_identity_changed(self, change: PersonsMerged | PersonSplit | PersonErased) -> Handled:
        async with self._writing:
            match change:
                case PersonsMerged():
                    return await self._merged(change)
                case PersonSplit():
                    return await self._split(change)
                case PersonErased():
                    await self.repo.erase(change.tenant_id, change.one_ids, at=change.erased_at)
                    return Handled()

    async def _merged(self, merge: PersonsMerged) -> Handled:
        """Fold the loser's lead into the winner's; the loser's document redirects its late touchpoints."""
        tenant = merge.tenant_id
        if await self._any_erased(tenant, merge.winner, merge.loser):
            return Handled()  # a replay after an erasure must not bring anybody back
        # The tombstone first, keeping the loser's lead: a replay after a crash still has it to fold.
        buried = await self.repo.load(tenant, merge.loser)
        loser = buried.lead if buried else None
        if buried is None or buried.merged_into is None:
            await self.repo.store(tenant, merge.loser, Stored(loser, merged_into=merge.winner))
        target, stored = await self.repo.resolve(tenant, merge.winner)  # the winner may be merged by now
        if target == merge.loser:
            raise RuntimeError(f"merge {merge.merge_id} would merge {merge.loser} into itself")
        winner = stored.lead if stored else None
        if loser is None:
            return Handled()  # nothing of the loser reached leads: its touchpoints will, redirected
        folded = fold(winner or Lead(tenant_id=tenant, one_id=target), loser)
        if folded is not winner:
            transition = merge_transition(winner, folded, at=merge.merged_at, merge_id=merge.merge_id)
            if transition:
                await self.repo.record_transition(folded, transition)
            await self.repo.save(folded)
        return Handled(self._changed(folded, f"{merge.merge_id}\x1f{target}", winner))

    async def _split(self, split: PersonSplit) -> Handled:
        """The moved touchpoints go to the new person, and both persons are rebuilt from their timelines."""
        tenant = split.tenant_id
        if await self._any_erased(tenant, split.source, split.new_one_id):
            return Handled()
        source, _ = await self.repo.resolve(tenant, split.source)
        new, _ = await self.repo.resolve(tenant, split.new_one_id)
        for event_id in split.moved_event_ids:
            await self.repo.move_touchpoint(tenant, event_id, new)  # placed ahead if it has not arrived yet
        outgoing = []
        for one_id, moved_away in [(source, set(split.moved_event_ids))] + ([(new, set())] if new != source else []):
            before, after = await self._rebuild(tenant, one_id, moved_away=moved_away)
            outgoing += self._changed(after, f"{split.split_id}\x1f{one_id}", before) if after else []
        return Handled(outgoing)

    async def _rebuild(self, tenant: str, one_id: str, *, moved_away: set[str]) -> tuple[Lead | None, Lead | None]:
        """Rebuild a person's lead and stage history from the touchpoints filed under it (and under the
        persons it absorbed). Returns the lead before and after."""
        stored = await self.repo.load(tenant, one_id)
        current = stored.lead if stored else None
        if current is not None and not current.on_timeline:
            return current, current  # older than the timeline: nobody can tell which touchpoints were whose
        absorbed = current.absorbed if current else ()
        events = await self.repo.timeline(tenant, [one_id, *absorbed])
        lead, transitions = rebuild(tenant, one_id, events)
        if current is None and lead.touchpoints == 0:
            return None, None  # nothing of this person has reached leads yet
        lead = replace(lead, absorbed=absorbed, version=(current.version if current else 0) + 1)
        if current is not None and same_lead(lead, current):
            lead = current  # rebuilt already (a replay)
        else:
            await self.repo.save(lead)
        # Always, so that a replay after a crash between the two writes completes the history.
        await self.repo.replace_transitions(tenant, one_id, transitions, causes={e.event_id for e in events} | moved_away,
                                            stale_types={MERGED})
        return current, lead

    async def _any_erased(self, tenant: str, *one_ids: str) -> bool:
        return any([await self.repo.is_erased(tenant, one_id) for one_id in one_ids])

    def _changed(self, lead: Lead, cause: str, before: Lead | None) -> list[Outgoing]:
        """The LeadUpdated of a change a merge or split made; its trigger is the newest touchpoint."""
        if lead.last_trigger is None:
            return []  # no touchpoint of this person has reached leads yet
        change = LeadUpdated(
            change_id=str(uuid.uuid5(_CHANGE_NS, f"{lead.tenant_id}\x1f{cause}")),
            tenant_id=lead.tenant_id,
            one_id=lead.one_id,
            version=lead.version,
            trigger=lead.last_trigger,
            lead=lead.snapshot(),
            previous_stage=before.stage if before and before.touchpoints and before.stage != lead.stage else None,
        )
        return [Outgoing(LEADS_CHANGES, lead.one_id, change)]

    # ---- queries ---------------------------------------------------------------------------------
    async def get(self, tenant_id: str, one_id: str) -> Lead | None:
        """The lead of the person `one_id` lives on as (a merged one_id leads to the survivor's)."""
        _, stored = await self.repo.resolve(tenant_id, one_id)
        return stored.lead if stored else None

    async def list(self, tenant_id: str, *, verdict: Verdict | None = None,
                   one_ids: list[str] | None = None, limit: int = 50) -> list[Lead]:
        return await self.repo.list(tenant_id, verdict=verdict, one_ids=one_ids, limit=limit)

    async def funnel(self, tenant_id: str) -> dict[Stage, int]:
        return await self.repo.stage_counts(tenant_id)

    async def history(self, tenant_id: str, one_id: str) -> list[dict]:
        return await self.repo.transitions_of(tenant_id, one_id)
