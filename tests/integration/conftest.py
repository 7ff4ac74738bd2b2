from __future__ import annotations

import pytest
from pymongo import AsyncMongoClient


@pytest.fixture
async def db(infra, unique):
    """A database of its own for each test, dropped afterwards."""
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True, retryWrites=False)
    database = client[f"it_{unique}"]
    try:
        yield database
    finally:
        await client.drop_database(database.name)
        await client.close()
