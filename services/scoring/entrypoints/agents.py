"""scoring agents. Consumes leads.changes and identity.merges (merges, splits, erasures);
produces scores.changes; dead letters go to leads.changes.scoring.dlq and identity.merges.scoring.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.identity import IdentityChanged
from schemas.leads import LeadUpdated
from schemas.topics import IDENTITY_MERGES, LEADS_CHANGES
from services.scoring.handlers import ScoringService


def register(channels: Channels, service: ScoringService) -> None:
    channels.consume(
        LEADS_CHANGES, decode=LeadUpdated.from_bytes, handle=service.on_lead_updated, name="scoring.rescore"
    )
    channels.consume(
        IDENTITY_MERGES,
        decode=IdentityChanged.from_bytes,
        handle=service.on_identity_changed,
        name="scoring.identity_changes",
    )
