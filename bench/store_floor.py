"""The floor of store work per touchpoint: what any design that keeps per-person state in the store could
get out of it on this machine, whatever leadflow's own code does.

Each of the four services must at least read the state it keeps for the touchpoint's person and write
it back (identity its link, leads the lead, scoring the score, notify the person's slot), and notify
stores a task for some touchpoints (one in five here, about the pipeline's share). This bench runs
exactly that, with one or more concurrent clients per service (`--clients`: a worker awaits one
command at a time; several show what the store does when it is kept busy), in three shapes:

- per record: a `find_one` and a `replace_one` by `_id` for each touchpoint (what the workers do, minus
  everything else they do);
- batched: the same reads one by one (FerretDB v1 pushes no `$in` down: a batched read is a scan), the
  writes as `bulk_write`s of at most 20 statements, the tasks as one `insert_many` per 100;
- append only: no reads and no per-person state in the store, each service's changes inserted 100 at
  a time (a design whose state lives elsewhere, in Kafka changelogs say, at a cost this does not
  measure, and whose store only receives history).

It prints touchpoints per second, and the store process's CPU per touchpoint and the cores it used
(from /proc, when the store is the local stack's): CPU per touchpoint is the firmer floor. Uses a scratch database of its own and drops it afterwards.
Run: `make up` (or the test stack), then `.venv/bin/python -m bench.store_floor [--url ...]`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pymongo import AsyncMongoClient, ReplaceOne

from bench import machine
from bench.idle_cpu import cpu_seconds
from bench.store_ops import state_document
from leadflow.devstack import ROOT, Processes, StackConfig, index_ferretdb_ids

SERVICES = ("identity", "leads", "scoring", "notify")
BATCH = 100
# FerretDB v1.24 holds a SQLite connection for each statement of an update command until the command
# ends, out of a pool of 100 per database: updates holding 100 at once never return, and stop the
# whole store (tests/unit/test_store_usage.py). Four clients of 50 each did. So at most 80 at once, and
# room to read.
HELD_AT_MOST = 80
TASK_EVERY = 5

Stage = Callable[[list[int]], Awaitable[None]]


def per_record(db, doc: dict, service: str, clients: int) -> Stage:
    state = db[service]

    async def stage(persons: list[int]) -> None:
        for n, p in enumerate(persons):
            await state.find_one({"_id": f"p{p}"})
            await state.replace_one({"_id": f"p{p}"}, doc)
            if service == "notify" and n % TASK_EVERY == 0:
                await db["tasks"].insert_one({**doc, "one_id": f"p{p}"})
    return stage


def batched(db, doc: dict, service: str, clients: int) -> Stage:
    state = db[service]
    bulk = max(1, HELD_AT_MOST // (len(SERVICES) * clients))

    async def stage(persons: list[int]) -> None:
        for start in range(0, len(persons), BATCH):
            chunk = persons[start:start + BATCH]
            for p in chunk:
                await state.find_one({"_id": f"p{p}"})
            replaces = [ReplaceOne({"_id": f"p{p}"}, doc) for p in chunk]
            for part in range(0, len(replaces), bulk):
                await state.bulk_write(replaces[part:part + bulk], ordered=False)
            if service == "notify":
                await db["tasks"].insert_many([{**doc, "one_id": f"p{p}"} for p in chunk[::TASK_EVERY]])
    return stage


def append_only(db, doc: dict, service: str, clients: int) -> Stage:
    history = db[f"{service}_history"]

    async def stage(persons: list[int]) -> None:
        for start in range(0, len(persons), BATCH):
            await history.insert_many([{**doc, "one_id": f"p{p}"} for p in persons[start:start + BATCH]])
            if service == "notify":
                await db["tasks"].insert_many([{**doc, "one_id": f"p{p}"} for p in persons[start:start + BATCH:TASK_EVERY]])
    return stage


SHAPES: dict[str, Callable[[object, dict, str, int], Stage]] = {
    "per record": per_record, "batched by 100": batched, "append only, by 100": append_only,
}


def spread(stage: Stage, stream: list[int], clients: int) -> list[Awaitable[None]]:
    """A service's share of the stream over `clients` concurrent clients (a worker's requests in flight)."""
    return [stage(stream[i::clients]) for i in range(clients)]


async def run(url: str, events: int, persons: int, clients_per_service: list[int], store_pid: int | None) -> None:
    client = AsyncMongoClient(url, retryWrites=False, socketTimeoutMS=60_000)  # a hung store fails the run
    db = client[f"bench_store_floor_{int(time.time())}"]
    doc = state_document(datetime.now(UTC))
    try:
        for service in (*SERVICES, "tasks", *(f"{s}_history" for s in SERVICES)):
            await db.create_collection(service)
        for service in SERVICES:
            await db[service].insert_many([{"_id": f"p{p}", **doc} for p in range(persons)])
        if store_pid is not None:  # the store's own data: give its tables the _id index the stack gives them
            index_ferretdb_ids(ROOT / "var" / "ferretdb")
        rng = random.Random(7)
        stream = [rng.randrange(persons) for _ in range(events)]
        print(f"{'shape':24} {'clients':>8} {'touchpoints/s':>14} {'store CPU/touchpoint':>21} {'store cores':>12}")
        for name, shape in SHAPES.items():
            for clients in clients_per_service:
                cpu = cpu_seconds(store_pid) if store_pid else None
                started = time.perf_counter()
                await asyncio.gather(*(client for s in SERVICES for client in spread(shape(db, doc, s, clients), stream, clients)))
                elapsed = time.perf_counter() - started
                used = cpu_seconds(store_pid) - cpu if cpu is not None else None
                per = f"{used / events * 1000:.2f} ms" if used is not None else "n/a"
                cores = f"{used / elapsed:.2f}" if used is not None else "n/a"
                print(f"{name:24} {clients * len(SERVICES):8} {events / elapsed:14.0f} {per:>21} {cores:>12}")
    finally:
        await client.drop_database(db.name)
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="any MongoDB URL; by default the local stack's store (`make up`)")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--clients", default="1,4", help="concurrent clients per service, comma-separated")
    args = parser.parse_args()
    config = StackConfig.from_env()
    # The local stack's store: its CPU and its SQLite files. Another URL: throughput only.
    store_pid = Processes(config).pid("store") if args.url is None else None
    if args.url is None and store_pid is None:
        print("the stack is not running; start it with `make up`, or name a store with --url", file=sys.stderr)
        return 2
    print(machine())
    print(f"{args.events} touchpoints over {args.persons} persons, four services at once")
    asyncio.run(run(args.url or config.mongo_url, args.events, args.persons,
                    [int(c) for c in args.clients.split(",")], store_pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
