"""notify agents. Consumes scores.changes; produces tasks.events;
dead letters go to scores.changes.notify.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.scores import ScoreChanged
from schemas.topics import SCORES_CHANGES
from services.notify.handlers import NotifyService


def register(channels: Channels, service: NotifyService) -> None:
    channels.consume(
        SCORES_CHANGES, decode=ScoreChanged.from_bytes, handle=service.on_score_changed, name="notify.create_tasks"
    )
