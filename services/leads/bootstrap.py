"""Wire the leads service."""

from __future__ import annotations

from leadflow.runtime.launcher import ServiceDefinition
from services.leads.adapters.repository import LeadRepository
from services.leads.entrypoints import agents
from services.leads.handlers import LeadService
from services.leads.settings import LeadsSettings

DEFINITION = ServiceDefinition(
    name="leads",
    settings=LeadsSettings,
    repositories=lambda db: [LeadRepository(db)],
    build=lambda settings, db: LeadService(LeadRepository(db)),
    register=agents.register,
)
