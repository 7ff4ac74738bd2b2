"""Watching what a service asks the store: a client that records every command's collection and filter,
to prove a path reads by `_id` alone (all FerretDB v1 pushes down) or writes no more than it should."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient, monitoring

READS = ("find", "aggregate", "count", "distinct")
WRITES = ("insert", "update", "delete", "findAndModify")


class StoreCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in READS or name in WRITES:
            query = event.command.get("filter") or event.command.get("query") or {}
            self.seen.append((name, event.command.get(name), dict(query)))

    def succeeded(self, event) -> None: ...

    def failed(self, event) -> None: ...

    def clear(self) -> None:
        self.seen.clear()

    def reads_of(self, collection: str) -> list[dict[str, Any]]:
        """The filters of the reads of `collection`."""
        return [query for name, coll, query in self.seen if coll == collection and name in READS]

    def writes_to(self, collection: str) -> int:
        return sum(1 for name, coll, _ in self.seen if coll == collection and name in WRITES)


def by_id_only(filters: list[dict[str, Any]]) -> bool:
    return bool(filters) and all(list(f) == ["_id"] for f in filters)


@asynccontextmanager
async def watched(infra, db):
    """(the test's database through a client that records its commands, the recorder)."""
    commands = StoreCommands()
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True, retryWrites=False, event_listeners=[commands])
    try:
        yield client[db.name], commands
    finally:
        await client.close()
