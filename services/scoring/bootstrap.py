"""Wire the scoring service."""

from __future__ import annotations

from datetime import UTC, datetime

from leadflow.runtime.launcher import ServiceDefinition
from services.scoring.adapters.repository import ScoreRepository
from services.scoring.domain.rules import CAR_DEALER
from services.scoring.entrypoints import agents
from services.scoring.handlers import ScoringService
from services.scoring.settings import ScoringSettings

DEFINITION = ServiceDefinition(
    name="scoring",
    settings=ScoringSettings,
    repositories=lambda db: [ScoreRepository(db)],
    build=lambda settings, db: ScoringService(
        ScoreRepository(db), rules=CAR_DEALER, clock=lambda: datetime.now(UTC)
    ),
    register=agents.register,
)
