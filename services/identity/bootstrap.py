"""Wire the identity service: settings, store, vault, handlers, agents."""

from __future__ import annotations

from datetime import UTC, datetime

import faust
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime import store
from leadflow.runtime.worker import Channels, make_app
from services.identity.adapters.repository import IdentityRepository
from services.identity.adapters.vault import Vault
from services.identity.entrypoints import agents
from services.identity.handlers import IdentityService
from services.identity.settings import IdentitySettings

SERVICE = "identity"


def build_service(settings: IdentitySettings, db: AsyncDatabase) -> IdentityService:
    return IdentityService(
        IdentityRepository(db),
        master_secret=settings.hmac_secret.get_secret_value().encode(),
        vault=Vault(settings.fernet_key.get_secret_value()),
        clock=lambda: datetime.now(UTC),
    )


async def prepare_store(settings: IdentitySettings) -> None:
    client, db = store.connect(settings, app_name=f"{SERVICE}-setup")
    try:
        await IdentityRepository(db).ensure_indexes()
    finally:
        await client.close()


def bootstrap(settings: IdentitySettings) -> faust.App:
    app = make_app(SERVICE, settings)
    _, db = store.connect(settings, app_name=SERVICE)
    agents.register(Channels(app, SERVICE, settings.topic_prefix), build_service(settings, db))
    return app
