"""Wire the notify service."""

from __future__ import annotations

from datetime import UTC, datetime

from leadflow.runtime.launcher import ServiceDefinition
from services.notify.adapters.repository import NotifyRepository
from services.notify.entrypoints import agents
from services.notify.handlers import NotifyService
from services.notify.settings import NotifySettings

DEFINITION = ServiceDefinition(
    name="notify",
    settings=NotifySettings,
    repositories=lambda db: [NotifyRepository(db)],
    build=lambda settings, db: NotifyService(NotifyRepository(db), clock=lambda: datetime.now(UTC)),
    register=agents.register,
)
