"""The document store: one AsyncMongoClient per process (FerretDB v1 locally, MongoDB 7+ in production).

Only single-document atomicity, unique indexes and plain CRUD are used: FerretDB v1 has neither
multi-document transactions nor change streams.
"""

from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure

from leadflow.runtime.settings import CommonSettings

# Errors that mean "the store is away for now": retry, never dead-letter.
TRANSIENT_STORE_ERRORS: tuple[type[BaseException], ...] = (ConnectionFailure,)


def connect(settings: CommonSettings, *, app_name: str) -> tuple[AsyncMongoClient, AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(
        settings.mongo_url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5_000,
        retryWrites=False,  # FerretDB v1 does not support retryable writes
    )
    return client, client[settings.mongo_db]


def is_duplicate_key(exc: BaseException) -> bool:
    return isinstance(exc, OperationFailure) and exc.code == 11000
