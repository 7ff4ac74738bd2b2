"""Wire the identity service: settings, store, vault, policies, handlers, agents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime.launcher import ServiceDefinition
from leadflow.runtime.settings import PersonalDataSettings
from leadflow.runtime.leases import PersonLeases
from services.identity.adapters.profiles import ProfileRepository
from services.identity.adapters.repository import IdentityRepository
from services.identity.adapters.vault import Vault
from services.identity.domain.policy import load_policies
from services.identity.entrypoints import agents
from services.identity.handlers import IdentityService
from services.identity.matcher import Matcher
from services.identity.operations import IdentityOperations
from services.identity.settings import IdentitySettings


@dataclass(frozen=True)
class IdentityHandlers:
    touchpoints: IdentityService
    operations: IdentityOperations


def build_service(settings: PersonalDataSettings, db: AsyncDatabase) -> IdentityService:
    secret = settings.hmac_secret.get_secret_value().encode()
    clock = lambda: datetime.now(UTC)  # noqa: E731
    service = IdentityService(
        IdentityRepository(db),
        master_secret=secret,
        vault=Vault(settings.fernet_key.get_secret_value()),
        clock=clock,
        policies=load_policies(settings.identity_policy_file),
    )
    service.matcher = Matcher(service, ProfileRepository(db), master_secret=secret, clock=clock)
    return service


def build_operations(service: IdentityService) -> IdentityOperations:
    return IdentityOperations(service, clock=lambda: datetime.now(UTC), reviews=service.matcher)


def build_handlers(settings: IdentitySettings, db: AsyncDatabase) -> IdentityHandlers:
    service = build_service(settings, db)
    return IdentityHandlers(service, build_operations(service))


DEFINITION = ServiceDefinition(
    name="identity",
    settings=IdentitySettings,
    repositories=lambda db: [IdentityRepository(db), ProfileRepository(db), PersonLeases(db)],
    build=build_handlers,
    register=agents.register,
)
