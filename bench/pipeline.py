"""End-to-end benchmark of the running stack (`make up` first; run with `make bench`).

For each rate it publishes simulated touchpoints straight to touchpoints.raw (a tenant of its own),
then waits until every stage is done: leads has consumed every event (from its /metrics) and no
consumer group lags (from the broker; neither wait puts load on the store).
It prints:
- sustained events/s: events / (time from first send until the pipeline was drained);
- p50/p99 latency from send to stored task, over the tasks the run created;
- store commands per event, per service (the workers' `leadflow_store_seconds_count`): on FerretDB
  each costs 0.5-1 ms of the store's CPU, so this is what throughput follows.
Figures go into docs/benchmarks.md by hand, with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pymongo import AsyncMongoClient

from bench import machine
from leadflow.devstack import ROOT, StackConfig, dev_env
from leadflow.runtime.lag import consumer_lag, registry_groups
from leadflow.sdk import Publisher
from leadflow.simulate.runner import KafkaSink, publish_paced
from leadflow.simulate.scenario import generate


class TimedSink(KafkaSink):
    """The simulator's Kafka sink, remembering when each event left."""

    def __init__(self, publisher: Publisher) -> None:
        super().__init__(publisher)
        self.sent_at: dict[str, float] = {}

    def send(self, event) -> None:
        self.sent_at[event.event_id] = time.time()
        super().send(event)


def samples(config: StackConfig, workers) -> Iterator[Sample]:
    """Every sample the workers' /metrics show now."""
    for worker in workers:
        text = httpx.get(f"http://127.0.0.1:{config.worker_ports[worker]}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            yield from family.samples


def counters(config: StackConfig) -> dict[str, float]:
    """Records consumed by leads and notify, and produced by scoring."""
    wanted = {
        ("leadflow_events_consumed_total", "leads", "touchpoints.identified"): "leads",
        ("leadflow_events_produced_total", "scoring", "scores.changes"): "scored",
        ("leadflow_events_consumed_total", "notify", "scores.changes"): "notified",
    }
    found = dict.fromkeys(wanted.values(), 0.0)
    for sample in samples(config, ("leads", "scoring", "notify")):
        if (name := wanted.get((sample.name, sample.labels.get("service"), sample.labels.get("topic")))) is not None:
            found[name] = sample.value
    return found


def store_commands(config: StackConfig) -> Counter[str]:
    """Store commands sent so far, per service, summed over its workers (start-up's `-setup` left out)."""
    sent: Counter[str] = Counter()
    for sample in samples(config, config.worker_ports):
        if sample.name == "leadflow_store_seconds_count" and not sample.labels["service"].endswith("-setup"):
            sent[sample.labels["service"]] += sample.value
    return sent


async def one_rate(config: StackConfig, env: dict[str, str], rate: float, duration: float, seed: int) -> dict:
    tenant = f"bench{int(time.time())}r{int(rate)}"
    sims, _ = generate(tenant, seed, int(rate * duration), datetime.now(UTC))
    client = AsyncMongoClient(env["LEADFLOW_MONGO_URL"], tz_aware=True)
    db = client[env["LEADFLOW_MONGO_DB"]]
    base, commands = counters(config), store_commands(config)
    with Publisher(env["LEADFLOW_KAFKA_BOOTSTRAP"], topic_prefix=env["LEADFLOW_TOPIC_PREFIX"]) as publisher:
        sink = TimedSink(publisher)
        started = time.time()
        publish_paced(sims, sink, rate=rate)
    deadline = time.time() + max(120.0, duration * 5)
    groups = registry_groups(env["LEADFLOW_TOPIC_PREFIX"])
    while time.time() < deadline:
        now = counters(config)
        done = int(now["leads"] - base["leads"])
        # Leads has every event, and every group has caught up with what the stages before it wrote
        # (scoring may be far behind leads: comparing notify with scoring alone is not enough).
        if done >= len(sims) and sum(r.lag for r in consumer_lag(env["LEADFLOW_KAFKA_BOOTSTRAP"], groups)) == 0:
            break
        await asyncio.sleep(0.5)
    finished = time.time()
    commands = store_commands(config) - commands
    latencies = []
    async for task in db["tasks"].find({"tenant_id": tenant}, {"trigger_event_id": 1, "created_at": 1}):
        sent = sink.sent_at.get(task["trigger_event_id"])
        if sent:
            latencies.append(task["created_at"].timestamp() - sent)
    await client.close()
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")  # noqa: E731
    return {
        "rate": rate, "events": len(sims), "applied": done, "complete": done >= len(sims),
        "sustained": done / (finished - started), "tasks": len(latencies),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "commands": {service: n / len(sims) for service, n in sorted(commands.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,200,400")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    config = StackConfig.from_env()
    env = dev_env(config)
    print(machine())
    print(f"{'offered/s':>10} {'events':>7} {'applied':>8} {'sustained/s':>12} {'tasks':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for rate in (float(r) for r in args.rates.split(",")):
        r = asyncio.run(one_rate(config, env, rate, args.duration, args.seed))
        flag = "" if r["complete"] else "  (not drained in time)"
        print(f"{r['rate']:>10.0f} {r['events']:>7} {r['applied']:>8} {r['sustained']:>12.1f} {r['tasks']:>6} "
              f"{r['p50_ms']:>8.0f} {r['p99_ms']:>8.0f}{flag}", flush=True)
        per_event = ", ".join(f"{service} {n:.1f}" for service, n in r["commands"].items())
        print(f"{'':>10} store commands per event: {per_event} (total {sum(r['commands'].values()):.1f})", flush=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
