"""notify agents. Consumes scores.changes and identity.merges (merges, splits, erasures); a timer checks
first-response deadlines (escalation, reassignment) and returns neglected leads to the shared pool;
another sends the queued pushes (inbox, WeCom, e-mail, webhook) with retries.
Produces tasks.events; dead letters go to scores.changes.notify.dlq and identity.merges.notify.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.identity import IdentityChanged
from schemas.scores import ScoreChanged
from schemas.topics import IDENTITY_MERGES, SCORES_CHANGES
from services.notify.handlers import NotifyService


def register(channels: Channels, service: NotifyService) -> None:
    channels.consume(
        SCORES_CHANGES, decode=ScoreChanged.from_bytes, handle=service.on_score_changed, name="notify.create_tasks"
    )
    channels.consume(
        IDENTITY_MERGES,
        decode=IdentityChanged.from_bytes,
        handle=service.on_identity_changed,
        name="notify.identity_changes",
    )
    # The timers act on this worker's persons (and a share of the pushes) only.
    mine = channels.ownership(SCORES_CHANGES)
    service.owns = service.pusher.owns = mine.owns
    service.owned = mine.owned
    # Several workers, or the API writing tasks on FerretDB v1: persons' changes under their leases.
    service.guard.sole = lambda: service.atomic_store and mine.sole()
    channels.every(service.timer_interval_s, service.on_timer, name="notify.timer")
    channels.every(service.delivery_interval_s, service.deliver, name="notify.delivery")
