"""Wire the identity service: settings, store, vault, handlers, agents."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.launcher import ServiceDefinition
from services.identity.adapters.repository import IdentityRepository
from services.identity.adapters.vault import Vault
from services.identity.entrypoints import agents
from services.identity.handlers import IdentityService
from services.identity.settings import IdentitySettings


def build_service(settings: IdentitySettings, db: AsyncDatabase) -> IdentityService:
    return IdentityService(
        IdentityRepository(db),
        master_secret=settings.hmac_secret.get_secret_value().encode(),
        vault=Vault(settings.fernet_key.get_secret_value()),
        clock=lambda: datetime.now(UTC),
    )


DEFINITION = ServiceDefinition(
    name="identity",
    settings=IdentitySettings,
    repositories=lambda db: [IdentityRepository(db)],
    build=build_service,
    register=agents.register,
)
