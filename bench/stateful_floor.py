"""The floor of the stateful design: what leadflow's four hops reach on this machine when each service
keeps its per-person state in a Faust table instead of the store, and the store only receives appends.

This is the shape `bench.store_floor` found to be the only one near 1,000 touchpoints/s on FerretDB v1
(983/s, the store alone), measured here with everything that shape costs besides the store: the broker,
four Faust workers, their changelogs, and a sink writing the store, all on one machine.

- Four Faust apps, one process each, chained like identity → leads → scoring → notify. Each keeps a
  table of per-person state (in memory, recovered from its changelog topic), and for every record
  decodes it, reads and rewrites its person's state (a JSON document of the scoring document's size),
  and sends a record on. It does not wait for each send's ack: Faust flushes its producer before it
  commits offsets (at-least-once), so a commit still follows every write it covers.
- A fifth process is the store's only writer: it reads the four hops' outputs and appends them in
  bulks (unordered `insert_many` keyed by hop and event id, so a replay inserts nothing new), notify's
  tasks (one touchpoint in five) too, and commits its offsets after each bulk.

No domain code, no validation, no leases: a floor, like the ceiling (`bench.ceiling`) it sits beside.
Prints touchpoints/s from the first send to the last stored append, p50/p99 from send to arrival at
the last hop, and each process's CPU per touchpoint (the broker's and store's when they are the local
stack's). Uses topics (prefix `stateful<time>.`) and a database of its own; drops the database.
Run: `make up` (or `leadflow stack up --infra-only`), then
`.venv/bin/python -m bench.stateful_floor [--count 20000] [--persons 5000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from bench import machine
from bench.idle_cpu import cpu_seconds
from bench.store_ops import state_document
from leadflow.devstack import ROOT, Processes, StackConfig
from leadflow.runtime.admin import ensure_topics
from schemas.topics import DEFAULT_PARTITIONS, TopicSpec

HOPS = ("identity", "leads", "scoring", "notify")
PAYLOAD = 1_200  # bytes: about a touchpoint as JSON
TASK_EVERY = 5
SINK_BULK = 500
TAKE = 500
DUPLICATE = 11000
LINGER = 0.01  # seconds: let the producer gather a batch, as the batched ceiling does
STALLED = 300.0  # seconds: a crashed hop fails the run instead of hanging it


def topic(prefix: str, n: int) -> str:
    return f"{prefix}hop{n}"


def run_hop(bootstrap: str, prefix: str, n: int, take: bool) -> None:
    """One service: a Faust worker whose agent keeps per-person state in a table."""
    import faust

    from leadflow.runtime.worker import quiet_worker

    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(f"{prefix}{HOPS[n]}", broker=f"kafka://{bootstrap}", store="memory://",
                    datadir=str(ROOT / "var" / "bench" / f"{prefix}{HOPS[n]}"),
                    processing_guarantee="at_least_once", producer_acks=-1, web_enabled=False,
                    consumer_auto_offset_reset="earliest", broker_commit_interval=1.0,
                    topic_partitions=DEFAULT_PARTITIONS, topic_replication_factor=1,
                    producer_linger=LINGER)
    source = app.topic(topic(prefix, n), key_serializer="raw", value_serializer="raw")
    # A batch's records share one current event (its last), so the changelog partition must come from
    # the key, as the topics' producers place it, not from the current event.
    state = app.Table("state", partitions=DEFAULT_PARTITIONS, key_type=bytes, value_type=bytes, use_partitioner=take)
    blank = json.dumps(state_document(datetime.now(UTC)), default=str).encode()
    out = topic(prefix, n + 1)

    def change(key: bytes, value: bytes) -> bytes:
        record = json.loads(value)
        person = json.loads(state.get(key) or blank)
        person["seen"] = person.get("seen", 0) + 1
        person["last_event"] = record["id"]
        state[key] = json.dumps(person).encode()
        record[HOPS[n]] = person["seen"]
        return json.dumps(record).encode()

    async def send(key: bytes, value: bytes):
        return await app.producer.send(out, key, value, partition=None, timestamp=None, headers=None)

    if take:
        @app.agent(source, concurrency=1)
        async def step_batches(stream):
            async for events in stream.take_events(TAKE, within=0.05):
                for event in events:
                    await send(event.key, change(event.key, event.value))
    else:
        @app.agent(source, concurrency=1)
        async def step(stream):
            async for event in stream.events():
                await send(event.key, change(event.key, event.value))

    quiet_worker(app, "WARNING").execute_from_commandline()


def run_sink(bootstrap: str, prefix: str, url: str, database: str, stored) -> None:
    asyncio.run(sink(bootstrap, prefix, url, database, stored))


async def sink(bootstrap: str, prefix: str, url: str, database: str, stored) -> None:
    """The store's one writer: every hop's output appended in bulks, offsets committed after each."""
    consumer = AIOKafkaConsumer(*(topic(prefix, n + 1) for n in range(len(HOPS))), bootstrap_servers=bootstrap,
                                group_id=f"{prefix}sink", enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=SINK_BULK)
    client = AsyncMongoClient(url, retryWrites=False)
    db = client[database]
    await consumer.start()
    try:
        while True:
            fetched = await consumer.getmany(timeout_ms=200, max_records=SINK_BULK)
            history, tasks = [], []
            for tp, records in fetched.items():
                hop = tp.topic.rsplit("hop", 1)[1]
                for r in records:
                    record = json.loads(r.value)
                    history.append({"_id": f"{hop}:{record['id']}", "one_id": r.key.decode(), "at": record["at"]})
                    if hop == str(len(HOPS)) and record["n"] % TASK_EVERY == 0:
                        tasks.append({"_id": record["id"], "one_id": r.key.decode(), "status": "open"})
            for collection, docs in (("history", history), ("tasks", tasks)):
                if docs:
                    try:
                        await db[collection].insert_many(docs, ordered=False)
                    except BulkWriteError as exc:  # a replay: what is there already stays
                        if any(e["code"] != DUPLICATE for e in exc.details["writeErrors"]):
                            raise
            if fetched:
                await consumer.commit()
                with stored.get_lock():
                    stored.value += len(history)
    finally:
        await consumer.stop()
        await client.close()


async def drive(bootstrap: str, prefix: str, count: int, persons: int, rate: float | None, stored,
                first: int) -> tuple[float, list[float]]:
    """Send `count` touchpoints (paced at `rate`/s, or as fast as acks return); wait until the last hop
    delivered them all and the sink stored all four hops' appends. Returns seconds and latencies."""
    last = AIOKafkaConsumer(topic(prefix, len(HOPS)), bootstrap_servers=bootstrap, group_id=None,
                            auto_offset_reset="latest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await last.start()
    await producer.start()
    await last.seek_to_end()
    rng = random.Random(first)
    latencies: list[float] = []

    async def receive() -> None:
        while len(latencies) < count:
            for records in (await last.getmany(timeout_ms=500)).values():
                now = time.time()
                latencies.extend(now - json.loads(r.value)["at"] for r in records)

    receiving = asyncio.create_task(receive())
    target = stored.value + count * len(HOPS)
    started = time.monotonic()
    pending = []
    for i in range(count):
        if rate:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        n = first + i
        value = {"id": f"e{n}", "n": n, "at": time.time()}
        body = json.dumps(value).encode()
        value["pad"] = "x" * max(0, PAYLOAD - len(body) - 10)
        pending.append(await producer.send(topic(prefix, 0), json.dumps(value).encode(),
                                           key=f"p{rng.randrange(persons)}".encode()))
        if len(pending) >= 1000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await asyncio.wait_for(receiving, timeout=STALLED)
    deadline = time.monotonic() + STALLED
    while stored.value < target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if stored.value < target:
        raise TimeoutError(f"the sink stored {stored.value} of {target} appends")
    elapsed = time.monotonic() - started
    await producer.stop()
    await last.stop()
    return elapsed, latencies


def measure(config: StackConfig, count: int, persons: int, half: bool, take: bool) -> None:
    bootstrap, url = config.kafka_bootstrap, config.mongo_url
    prefix = f"stateful{int(time.time() * 1000)}."
    database = f"bench_{prefix.rstrip('.')}"
    specs = tuple(TopicSpec(f"hop{n}", key="", value=None, writer="bench") for n in range(len(HOPS) + 1))
    ensure_topics(bootstrap, prefix=prefix, specs=specs)
    stored = multiprocessing.Value("q", 0)
    children = [multiprocessing.Process(target=run_hop, args=(bootstrap, prefix, n, take), daemon=True)
                for n in range(len(HOPS))]
    children.append(multiprocessing.Process(target=run_sink, args=(bootstrap, prefix, url, database, stored),
                                            daemon=True))
    for p in children:
        p.start()
    stack = Processes(config)
    watched = {**{HOPS[n]: children[n].pid for n in range(len(HOPS))}, "sink": children[-1].pid,
               "kafka": stack.pid("kafka"), "store": stack.pid("store")}
    try:
        # Warm up: the workers join, recover their (empty) tables and connect before the clock starts.
        asyncio.run(drive(bootstrap, prefix, 50, persons, None, stored, first=10_000_000))
        per_s = run_once(bootstrap, prefix, persons, stored, watched, None, count, first=0)
        if half:
            run_once(bootstrap, prefix, persons, stored, watched, per_s / 2, count // 2, first=count)
    finally:
        for p in children:
            p.terminate()
        for p in children:
            p.join(timeout=30)
        client = AsyncMongoClient(url)
        asyncio.run(_drop(client, database))
        for hop in HOPS:
            shutil.rmtree(ROOT / "var" / "bench" / f"{prefix}{hop}", ignore_errors=True)


def run_once(bootstrap: str, prefix: str, persons: int, stored, watched: dict[str, int | None],
             rate: float | None, count: int, first: int) -> float:
    """One measured run; prints its line and returns touchpoints/s."""
    cpu = {name: cpu_seconds(pid) for name, pid in watched.items() if pid}
    elapsed, latencies = asyncio.run(drive(bootstrap, prefix, count, persons, rate, stored, first=first))
    used = {name: cpu_seconds(watched[name]) - before for name, before in cpu.items() if before is not None}
    latencies.sort()
    per_s = count / elapsed
    offered = "max" if rate is None else f"{rate:.0f}/s"
    print(f"{offered:>9} {count:>8} {per_s:>13.0f} {statistics.median(latencies) * 1000:>8.0f} "
          f"{latencies[int(0.99 * (len(latencies) - 1))] * 1000:>8.0f}   "
          + "  ".join(f"{name} {u / count * 1000:.2f}" for name, u in used.items())
          + f"   cores {sum(used.values()) / elapsed:.2f}", flush=True)
    return per_s


async def _drop(client: AsyncMongoClient, database: str) -> None:
    await client.drop_database(database)
    await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--persons", type=int, default=5_000)
    parser.add_argument("--take", action="store_true",
                        help=f"hops take up to {TAKE} records at a time (Stream.take_events) instead of one by one")
    parser.add_argument("--no-half", action="store_true", help="skip the run at half the rate reached")
    args = parser.parse_args()
    config = StackConfig.from_env()
    if Processes(config).pid("kafka") is None:
        print("the stack is not running; start it with `make up` or `leadflow stack up --infra-only`",
              file=sys.stderr)
        return 2
    print(machine())
    print(f"{len(HOPS)} Faust hops with per-person tables, a sink appending to the store; "
          f"{args.persons} persons, {PAYLOAD}-byte touchpoints")
    print(f"{'offered':>9} {'touchpoints':>8} {'touchpoints/s':>13} {'p50 ms':>8} {'p99 ms':>8}   "
          "CPU ms per touchpoint")
    measure(config, args.count, args.persons, not args.no_half, args.take)
    return 0


if __name__ == "__main__":
    sys.exit(main())
