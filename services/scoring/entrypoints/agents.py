"""scoring agents. Consumes leads.changes; produces scores.changes;
dead letters go to leads.changes.scoring.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.leads import LeadUpdated
from schemas.topics import LEADS_CHANGES
from services.scoring.handlers import ScoringService


def register(channels: Channels, service: ScoringService) -> None:
    channels.consume(
        LEADS_CHANGES, decode=LeadUpdated.from_bytes, handle=service.on_lead_updated, name="scoring.rescore"
    )
