"""leads agents. Consumes touchpoints.identified, identity.merges (merges, splits, erasures),
tasks.outcomes (consultants' outcomes) and tasks.events (assignments); a timer sends persons dormant
and finds replacement candidates. Produces leads.changes and leads.alerts; dead letters go to
<source>.leads.dlq for each source."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.identity import IdentityChanged, TouchpointIdentified
from schemas.tasks import TaskCreated, TaskOutcomeRecorded
from schemas.topics import IDENTITY_MERGES, TASKS_EVENTS, TASKS_OUTCOMES, TOUCHPOINTS_IDENTIFIED
from services.leads.handlers import LeadService


def register(channels: Channels, service: LeadService) -> None:
    channels.consume(TOUCHPOINTS_IDENTIFIED, decode=TouchpointIdentified.from_bytes, handle=service.on_identified,
                     name="leads.apply")
    channels.consume(IDENTITY_MERGES, decode=IdentityChanged.from_bytes, handle=service.on_identity_changed,
                     name="leads.identity_changes")
    channels.consume(TASKS_OUTCOMES, decode=TaskOutcomeRecorded.from_bytes, handle=service.on_outcome,
                     name="leads.outcomes")
    channels.consume(TASKS_EVENTS, decode=TaskCreated.from_bytes, handle=service.on_task, name="leads.assignments")
    mine = channels.ownership(TOUCHPOINTS_IDENTIFIED)
    service.owns, service.owned = mine.owns, mine.owned  # the timer acts on this worker's persons only
    service.guard.sole = mine.sole  # several workers: persons' changes under their leases
    channels.every(service.timer_interval_s, service.on_timer, name="leads.timer")
