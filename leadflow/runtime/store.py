"""The document store: one AsyncMongoClient per process (FerretDB v1 locally, MongoDB 7+ in production).

Only single-document atomicity, unique indexes and plain CRUD are used: FerretDB v1 has neither
multi-document transactions nor change streams.
"""

from __future__ import annotations

from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, CollectionInvalid, ConnectionFailure, DuplicateKeyError

from leadflow.runtime import metrics
from leadflow.runtime.settings import CommonSettings

DUPLICATE_KEY = 11000
# Errors that mean "the store is away for now": retry, never dead-letter.
TRANSIENT_STORE_ERRORS: tuple[type[BaseException], ...] = (ConnectionFailure,)


class CommandTimer(monitoring.CommandListener):
    """Times every command into `leadflow_store_seconds`: which collection and command a worker waits
    on, measured where it happens rather than guessed (the store is the bottleneck on FerretDB)."""

    _COLLECTION_COMMANDS = frozenset({"find", "insert", "update", "delete", "aggregate", "count", "findAndModify",
                                      "distinct", "createIndexes", "create", "drop"})

    def __init__(self, service: str) -> None:
        self.service = service
        self._started: dict[tuple[int, int], tuple[str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        collection = event.command.get(name) if name in self._COLLECTION_COMMANDS else None
        if len(self._started) > 10_000:  # answers that never came (a dropped connection): forget them
            self._started.clear()
        self._started[event.request_id, event.operation_id or 0] = (name, collection if isinstance(collection, str) else "")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._observe(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._observe(event)

    def _observe(self, event) -> None:
        name, collection = self._started.pop((event.request_id, event.operation_id or 0), (event.command_name, ""))
        metrics.STORE_SECONDS.labels(self.service, name, collection).observe(event.duration_micros / 1e6)


def connect(settings: CommonSettings, *, app_name: str) -> tuple[AsyncMongoClient, AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(
        settings.mongo_url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5_000,
        retryWrites=False,  # FerretDB v1 does not support retryable writes
        event_listeners=[CommandTimer(app_name)],
    )
    return client, client[settings.mongo_db]


async def applies_updates_atomically(db: AsyncDatabase) -> bool:
    """Whether the store applies an update to one document atomically, as MongoDB does. FerretDB v1
    reads the document and writes it back whole, without a transaction, so two processes updating one
    document at once can lose one's change; it names itself in `buildInfo`."""
    return "ferretdbVersion" not in await db.command("buildInfo")


async def find_owned(collection, tenant_id: str, doc_id: str) -> dict | None:
    """The document with this _id if it belongs to the tenant. Filters on _id alone: FerretDB v1
    pushes nothing else down to SQLite and would scan the collection for `{_id, tenant_id}`."""
    doc = await collection.find_one({"_id": doc_id})
    return doc if doc is not None and doc.get("tenant_id") == tenant_id else None


async def insert_all_once(collection, docs: list[dict]) -> int:
    """`insert_once` for many documents in one command (unordered: the taken _ids fail alone, the rest
    go in). Returns how many this call created. One round trip instead of one per document."""
    if not docs:
        return 0
    try:
        return len((await collection.insert_many(docs, ordered=False)).inserted_ids)
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", ())):
            raise
        return exc.details.get("nInserted", 0)


async def insert_once(collection, doc: dict) -> bool:
    """Insert `doc` unless a document with its _id exists; True if this call created it.

    The idempotent write of choice: a replay, or a racing worker, finds the _id taken and changes
    nothing. (Preferred over an upsert with $setOnInsert, which races into duplicate-key errors on
    MongoDB too, and whose null fields FerretDB v1 drops.)
    """
    try:
        await collection.insert_one(doc)
        return True
    except DuplicateKeyError:
        return False


async def ensure_collections(*collections) -> None:
    """Create the collections now rather than on first insert, so that start-up work on them
    (indexes, and the FerretDB _id index of leadflow.devstack) covers them all."""
    for collection in collections:
        try:
            await collection.database.create_collection(collection.name)
        except CollectionInvalid:
            pass  # exists already
