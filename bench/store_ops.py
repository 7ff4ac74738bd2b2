"""Per-operation cost of the document store (FerretDB v1 locally, or any MongoDB URL).

Run: .venv/bin/python -m bench.store_ops [--url mongodb://127.0.0.1:27017/]
Uses a scratch database of its own and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from pathlib import Path

from pymongo import AsyncMongoClient

from leadflow.devstack import ROOT, index_ferretdb_ids

N = 300


def state_document(now: datetime) -> dict:
    """About the shape of a scoring state document: ~40 nested fields."""
    return {
        "tenant_id": "t", "one_id": "p", "score": 55.0, "grade": "A", "version": 3,
        "signals": [{"event_id": f"sim-7-{i:08d}", "event_type": "page_viewed", "occurred_at": now} for i in range(8)],
        "recent_triggers": [f"sim-7-{i:08d}" for i in range(8)],
        "contributions": [{"signal": "form_submitted", "label": "留资", "count": 1, "points": 30.0} for _ in range(4)],
        "lead": {"verdict": "valid", "stage": "lead", "reachable": True, "touchpoints": 3, "last_seen_at": now},
    }


async def timed(name: str, op, n: int = N) -> None:
    started = time.perf_counter()
    for i in range(n):
        await op(i)
    elapsed = time.perf_counter() - started
    print(f"{name:48} {n / elapsed:8.0f}/s {elapsed / n * 1000:7.2f} ms")


async def by_id(small, big, doc, label: str) -> None:
    await timed(f"find_one by _id, hit{label}", lambda i: small.find_one({"_id": f"k{i % 1000}"}))
    await timed(f"find_one by _id, miss{label}", lambda i: small.find_one({"_id": f"none{i}"}))
    await timed(f"update_one by _id ($set){label}", lambda i: small.update_one({"_id": f"k{i % 1000}"}, {"$set": {"a": -i}}))
    await timed(f"replace_one by _id (small){label}", lambda i: small.replace_one({"_id": f"k{i % 1000}"}, {"a": i}))
    await timed(f"replace_one by _id (state doc){label}", lambda i: big.replace_one({"_id": f"s{i % 100}"}, doc))


async def main(url: str, ferretdb_dir: Path | None) -> None:
    client = AsyncMongoClient(url, retryWrites=False)
    db = client[f"bench_store_ops_{int(time.time())}"]
    small, big = db["small"], db["state"]
    doc = state_document(datetime.now(UTC))
    await small.insert_many([{"_id": f"k{i}", "a": i, "b": "x" * 200} for i in range(1000)])
    await big.insert_many([{"_id": f"s{i}", **doc} for i in range(100)])
    try:
        await timed("insert_one (small)", lambda i: small.insert_one({"_id": f"new{i}", "b": "x" * 200}))
        await by_id(small, big, doc, "")
        await timed("update_one by {_id, a} (compound filter)", lambda i: small.update_one({"_id": f"k{i % 1000}", "a": -1}, {"$set": {"c": 1}}), n=30)
        await timed("find by _id $in (2 ids)", lambda i: small.find({"_id": {"$in": [f"k{i}", "zz"]}}).to_list(), n=30)
        if ferretdb_dir and ferretdb_dir.is_dir():
            index_ferretdb_ids(ferretdb_dir)
            await by_id(small, big, doc, " [+_id index]")
    finally:
        await client.drop_database(db.name)
        await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="mongodb://127.0.0.1:27017/")
    parser.add_argument("--ferretdb-dir", type=Path, default=ROOT / "var" / "ferretdb",
                        help="SQLite files of the local FerretDB, to show the effect of the _id index")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.ferretdb_dir))
