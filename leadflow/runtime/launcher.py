"""Start one stream worker: `python -m services.<name> [--web-port N]`.

A service describes itself with a `ServiceDefinition`; this module does the wiring every service
shares, in the order that matters: topics and indexes exist before the first record is consumed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import faust
from pymongo.asynchronous.database import AsyncDatabase

from leadflow.runtime import store
from leadflow.runtime.admin import ensure_topics
from leadflow.runtime.settings import WorkerSettings
from leadflow.runtime.worker import Channels, add_readiness, make_app, run


class HasIndexes(Protocol):
    async def ensure_indexes(self) -> None: ...


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    settings: type[WorkerSettings]
    repositories: Callable[[AsyncDatabase], Sequence[HasIndexes]]
    build: Callable[[Any, AsyncDatabase], Any]  # (settings, db) -> the service's handlers
    register: Callable[[Channels, Any], None]  # declares the agents


async def prepare_store(definition: ServiceDefinition, settings: WorkerSettings) -> WorkerSettings:
    """Indexes and collections; the settings with what the store is like filled in."""
    client, db = store.connect(settings, app_name=f"{definition.name}-setup")
    try:
        for repository in definition.repositories(db):
            await repository.ensure_indexes()
        if settings.store_atomic_updates is None:
            settings = settings.model_copy(update={"store_atomic_updates": await store.applies_updates_atomically(db)})
        return settings
    finally:
        await client.close()


def bootstrap(definition: ServiceDefinition, settings: WorkerSettings) -> faust.App:
    app = make_app(definition.name, settings)
    _, db = store.connect(settings, app_name=definition.name)
    add_readiness(app, definition.name, db)
    definition.register(Channels(app, definition.name, settings.topic_prefix, bootstrap=settings.kafka_bootstrap), definition.build(settings, db))
    return app


def launch(definition: ServiceDefinition) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{definition.name}")
    parser.add_argument("--web-port", type=int, default=None)
    args = parser.parse_args()
    settings = definition.settings(**({"web_port": args.web_port} if args.web_port else {}))
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ensure_topics(
        settings.kafka_bootstrap,
        prefix=settings.topic_prefix,
        partitions=settings.partitions,
        replication_factor=settings.replication_factor,
    )
    settings = asyncio.run(prepare_store(definition, settings))
    run(bootstrap(definition, settings), settings)
