"""Wire the leads service."""

from __future__ import annotations

from pathlib import Path

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.launcher import ServiceDefinition
from services.leads.adapters.repository import LeadRepository
from services.leads.adapters.signals import BadPhones, Velocity
from services.leads.adapters.sources import SourceStats
from services.leads.adapters.timeline import Timeline
from services.leads.domain.policy import LeadPolicyBook, load_lead_policies
from services.leads.entrypoints import agents
from services.leads.handlers import LEASES, LeadService
from leadflow.runtime.leases import PersonLeases
from services.leads.settings import LeadsSettings


def _stores(db: AsyncDatabase, secret: bytes = b"") -> tuple:
    return LeadRepository(db), Timeline(db), Velocity(db, secret), BadPhones(db), SourceStats(db)


def make_service(db: AsyncDatabase, *, policies: LeadPolicyBook | None = None, secret: bytes = b"",
                 timer_batch: int = 500, timer_interval_s: float = 30.0) -> LeadService:
    return LeadService(*_stores(db, secret), policies or LeadPolicyBook(), timer_batch=timer_batch,
                       timer_interval_s=timer_interval_s)


def build(settings: LeadsSettings, db: AsyncDatabase) -> LeadService:
    return make_service(db, policies=load_lead_policies(settings.leads_policy_file),
                        secret=settings.hmac_secret.get_secret_value().encode(),
                        timer_batch=settings.timer_batch, timer_interval_s=settings.timer_interval_s)


def build_for_reads(db: AsyncDatabase, policy_file: Path | None) -> LeadService:
    """The queries of the service, for the API (which writes nothing of leads')."""
    return make_service(db, policies=load_lead_policies(policy_file))


DEFINITION = ServiceDefinition(
    name="leads",
    settings=LeadsSettings,
    repositories=lambda db: [*_stores(db), PersonLeases(db, collection=LEASES)],
    build=build,
    register=agents.register,
)
