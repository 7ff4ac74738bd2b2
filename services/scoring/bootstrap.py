"""Wire the scoring service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.launcher import ServiceDefinition
from services.scoring.adapters.models import ModelStore
from services.scoring.adapters.repository import ScoreRepository
from services.scoring.domain.rules import RuleBook, load_book
from services.scoring.entrypoints import agents
from services.scoring.handlers import LEASES, ScoringService
from leadflow.runtime.leases import PersonLeases
from services.scoring.settings import ScoringSettings


def _now() -> datetime:
    return datetime.now(UTC)


def make_service(db: AsyncDatabase, *, rules: RuleBook | None = None, clock: Callable[[], datetime] = _now,
                 timer_batch: int = 500, timer_interval_s: float = 30.0) -> ScoringService:
    return ScoringService(ScoreRepository(db), ModelStore(db), rules=rules or load_book(None), clock=clock,
                          timer_batch=timer_batch, timer_interval_s=timer_interval_s)


def build(settings: ScoringSettings, db: AsyncDatabase) -> ScoringService:
    return make_service(db, rules=load_book(settings.scoring_rules_file), timer_batch=settings.rescore_batch,
                        timer_interval_s=settings.rescore_interval_s)


def build_for_reads(db: AsyncDatabase, rules_file: Path | None, clock: Callable[[], datetime] = _now) -> ScoringService:
    """The queries of the service, for the API and the CLI (which write nothing of scoring's but requests)."""
    return make_service(db, rules=load_book(rules_file), clock=clock)


DEFINITION = ServiceDefinition(
    name="scoring",
    settings=ScoringSettings,
    repositories=lambda db: [ScoreRepository(db), ModelStore(db), PersonLeases(db, collection=LEASES)],
    build=build,
    register=agents.register,
)
