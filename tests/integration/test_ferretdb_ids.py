"""The _id index that leadflow.devstack adds to FerretDB v1's SQLite tables is used, and FerretDB
keeps working with it (look-ups, unique _id, dropping the collection)."""

from __future__ import annotations

import sqlite3

import pytest
from pymongo.errors import DuplicateKeyError

from leadflow.devstack import index_ferretdb_ids
from tests.conftest import TEST_STACK

LOOKUP = "EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM \"{table}\" WHERE _ferretdb_sjson->'$._id' = ?"


async def test_id_lookups_use_an_index_after_tuning(infra, db):
    if infra.mongo_url != TEST_STACK.mongo_url:
        pytest.skip("the store is not the project's own FerretDB, so there are no SQLite files to tune")
    things = db["things"]
    await things.insert_many([{"_id": f"k{i}", "n": i} for i in range(50)])
    path = TEST_STACK.var / "ferretdb" / f"{db.name}.sqlite"
    with sqlite3.connect(path) as sql:
        table = sql.execute("SELECT table_name FROM _ferretdb_collections WHERE name = 'things'").fetchone()[0]
        assert "SCAN" in str(sql.execute(LOOKUP.format(table=table), ('"k1"',)).fetchall())  # FerretDB's own index is not used

    assert f"{table}__id_path" in index_ferretdb_ids(TEST_STACK.var / "ferretdb")

    with sqlite3.connect(path) as sql:
        assert "USING INDEX" in str(sql.execute(LOOKUP.format(table=table), ('"k1"',)).fetchall())
    assert (await things.find_one({"_id": "k7"}))["n"] == 7
    assert await things.find_one({"_id": "missing"}) is None
    with pytest.raises(DuplicateKeyError):
        await things.insert_one({"_id": "k7"})
    await things.drop()
    assert await things.find_one({"_id": "k7"}) is None
