"""The ceiling: how fast records can cross leadflow's four hops with nothing but aiokafka.

touchpoints.raw → identity → touchpoints.identified → leads → leads.changes → scoring → scores.changes
→ notify → tasks.events: four consume-and-produce hops, each in a process of its own, on the same
broker and machine as the real stack. No store, no decoding, no domain code. Two modes:
- `per-record`: each hop sends a record and waits for the broker's ack (acks=all) before taking the
  next, as leadflow's workers do (an offset moves only after the output is durable);
- `batched`: each hop sends everything one fetch returned, then waits for all the acks at once.

Consumes and produces topics of its own (prefix `ceiling<time>.`) on the broker at --bootstrap
(the local stack's by default). Prints records/s end to end and p50/p99 from first send to arrival
at the last topic.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import struct
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import machine
from leadflow.runtime.admin import ensure_topics
from schemas.topics import TopicSpec

HOPS = 4
PAYLOAD = 1_200  # bytes: about a touchpoint as JSON


def topic(prefix: str, n: int) -> str:
    return f"{prefix}hop{n}"


async def hop(bootstrap: str, prefix: str, n: int, batched: bool) -> None:
    consumer = AIOKafkaConsumer(topic(prefix, n), bootstrap_servers=bootstrap, group_id=f"{prefix}hop{n}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0 if not batched else 2)
    await consumer.start()
    await producer.start()
    try:
        while True:
            fetched = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in fetched.values():
                if batched:
                    futures = [await producer.send(topic(prefix, n + 1), r.value, key=r.key) for r in records]
                    await asyncio.gather(*futures)
                else:
                    for r in records:
                        await producer.send_and_wait(topic(prefix, n + 1), r.value, key=r.key)
            if fetched:
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


def run_hop(bootstrap: str, prefix: str, n: int, batched: bool) -> None:
    asyncio.run(hop(bootstrap, prefix, n, batched))


async def source_and_sink(bootstrap: str, prefix: str, count: int, rate: float | None) -> list[float]:
    """Send `count` records (paced at `rate`/s, or as fast as acks come back) and time their arrival."""
    sink = AIOKafkaConsumer(topic(prefix, HOPS), bootstrap_servers=bootstrap, group_id=None,
                            auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await sink.start()
    await producer.start()
    latencies: list[float] = []

    async def receive() -> None:
        while len(latencies) < count:
            for records in (await sink.getmany(timeout_ms=500)).values():
                now = time.time()
                latencies.extend(now - struct.unpack(">d", r.value[:8])[0] for r in records)

    receiving = asyncio.create_task(receive())
    started = time.monotonic()
    pending = []
    for i in range(count):
        if rate:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        value = struct.pack(">d", time.time()) + b"x" * (PAYLOAD - 8)
        pending.append(await producer.send(topic(prefix, 0), value, key=str(i % 997).encode()))
        if len(pending) >= 1000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await receiving
    elapsed = time.monotonic() - started
    await producer.stop()
    await sink.stop()
    return [elapsed, *latencies]


def measure(bootstrap: str, count: int, batched: bool, rate: float | None) -> dict:
    prefix = f"ceiling{int(time.time() * 1000)}."
    specs = tuple(TopicSpec(f"hop{n}", key="", value=None, writer="bench") for n in range(HOPS + 1))
    ensure_topics(bootstrap, prefix=prefix, specs=specs)
    hops = [multiprocessing.Process(target=run_hop, args=(bootstrap, prefix, n, batched), daemon=True)
            for n in range(HOPS)]
    for p in hops:
        p.start()
    try:
        time.sleep(3.0)  # the hops join their groups
        elapsed, *latencies = asyncio.run(source_and_sink(bootstrap, prefix, count, rate))
    finally:
        for p in hops:
            p.terminate()
    latencies.sort()
    return {"mode": "batched" if batched else "per-record", "rate": rate, "count": count,
            "per_s": count / elapsed, "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    print(machine())
    print(f"{HOPS} hops, {PAYLOAD}-byte records, acks=all, one process per hop")
    print(f"{'mode':>11} {'offered':>9} {'records':>8} {'records/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for batched in (False, True):
        full = measure(args.bootstrap, args.count, batched, None)
        half = measure(args.bootstrap, args.count // 2, batched, full["per_s"] / 2)
        for r in (full, half):
            offered = "max" if r["rate"] is None else f"{r['rate']:.0f}/s"
            print(f"{r['mode']:>11} {offered:>9} {r['count']:>8} {r['per_s']:>10.0f} {r['p50_ms']:>8.1f} "
                  f"{r['p99_ms']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
