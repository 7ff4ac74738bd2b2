"""The idempotent bulk insert on the real store (FerretDB v1 and MongoDB answer duplicates alike)."""

from __future__ import annotations

from leadflow.runtime.store import insert_all_once


async def test_insert_all_once_creates_the_new_and_leaves_the_taken(db):
    collection = db["bulk_once"]
    assert await insert_all_once(collection, [{"_id": "a", "n": 1}, {"_id": "b", "n": 1}]) == 2
    # A retried batch: two taken, one new, in no particular order.
    assert await insert_all_once(collection, [{"_id": "b", "n": 2}, {"_id": "c", "n": 2}, {"_id": "a", "n": 2}]) == 1
    assert {d["_id"]: d["n"] async for d in collection.find({})} == {"a": 1, "b": 1, "c": 2}
    assert await insert_all_once(collection, []) == 0
