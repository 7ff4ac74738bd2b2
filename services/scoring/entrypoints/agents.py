"""scoring agents. Consumes leads.changes, tasks.outcomes (consultants' outcomes: signals, and labels
the model learns from) and identity.merges (merges, splits, erasures); a timer re-scores quiet persons
and a tenant after `leadflow rescore`. Produces scores.changes; dead letters go to <source>.scoring.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.identity import IdentityChanged
from schemas.leads import LeadUpdated
from schemas.tasks import TaskOutcomeRecorded
from schemas.topics import IDENTITY_MERGES, LEADS_CHANGES, TASKS_OUTCOMES
from services.scoring.handlers import ScoringService


def register(channels: Channels, service: ScoringService) -> None:
    channels.consume(
        LEADS_CHANGES, decode=LeadUpdated.from_bytes, handle=service.on_lead_updated, name="scoring.rescore"
    )
    channels.consume(TASKS_OUTCOMES, decode=TaskOutcomeRecorded.from_bytes, handle=service.on_outcome,
                     name="scoring.outcomes")
    channels.consume(
        IDENTITY_MERGES,
        decode=IdentityChanged.from_bytes,
        handle=service.on_identity_changed,
        name="scoring.identity_changes",
    )
    mine = channels.ownership(LEADS_CHANGES)
    service.owns, service.owned = mine.owns, mine.owned  # the timer acts on this worker's persons only
    service.guard.sole = mine.sole  # several workers: persons' changes under their leases
    channels.every(service.timer_interval_s, service.on_timer, name="scoring.timer")
