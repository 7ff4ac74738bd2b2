"""leads use cases: apply an identified touchpoint to the person's lead; answer lead queries."""

from __future__ import annotations

import uuid

from leadflow.runtime.messages import Handled, Outgoing
from schemas.identity import TouchpointIdentified
from schemas.leads import LeadUpdated, Stage, Verdict
from schemas.topics import LEADS_CHANGES
from services.leads.adapters.repository import LeadRepository
from services.leads.domain.lead import Lead, apply, trigger_of

_CHANGE_NS = uuid.UUID("0b8f1f9e-7a43-4c52-9d0e-5f2b8e0c6a11")


class LeadService:
    def __init__(self, repo: LeadRepository) -> None:
        self.repo = repo

    async def on_identified(self, event: TouchpointIdentified) -> Handled:
        before = await self.repo.get(event.tenant_id, event.one_id)
        lead, transition, applied = apply(before, event)
        if applied:
            await self.repo.save(lead)
            if transition:
                await self.repo.record_transition(lead, transition)
        # Emitted even for a replay: the first attempt may have died between the write and the send.
        # The change id is the same either way, so consumers recognise it.
        change = LeadUpdated(
            change_id=str(uuid.uuid5(_CHANGE_NS, f"{event.tenant_id}\x1f{event.event_id}")),
            tenant_id=event.tenant_id,
            one_id=event.one_id,
            version=lead.version,
            trigger=trigger_of(event),
            lead=lead.snapshot(),
            previous_stage=transition.from_stage if transition else None,
        )
        return Handled([Outgoing(LEADS_CHANGES, event.one_id, change)])

    # ---- queries ---------------------------------------------------------------------------------
    async def get(self, tenant_id: str, one_id: str) -> Lead | None:
        return await self.repo.get(tenant_id, one_id)

    async def list(self, tenant_id: str, *, verdict: Verdict | None = None,
                   one_ids: list[str] | None = None, limit: int = 50) -> list[Lead]:
        return await self.repo.list(tenant_id, verdict=verdict, one_ids=one_ids, limit=limit)

    async def funnel(self, tenant_id: str) -> dict[Stage, int]:
        return await self.repo.stage_counts(tenant_id)

    async def history(self, tenant_id: str, one_id: str) -> list[dict]:
        return await self.repo.transitions_of(tenant_id, one_id)
