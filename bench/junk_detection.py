"""Junk detection against the simulator's ground truth, through the running stack (`make up` first).

Publishes a simulated stream (about 10% junk: test and invalid numbers, bot form fills, disposable
e-mails, brushing bursts from one device and IP) to touchpoints.raw under a tenant of its own, waits
until leads has judged every touchpoint, then reads each touchpoint's verdict from the leads timeline
and compares it with the truth, per event:
- flagged = suspect or junk: precision and recall against the junk events;
- junk alone: precision and recall (junk never reaches a consultant, so its precision matters most);
- recall per junk reason, and which verdict reasons fired on real people (the false positives).
Figures go into docs/benchmarks.md by hand, with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime

from pymongo import AsyncMongoClient

from bench import machine
from bench.pipeline import counters
from leadflow.devstack import ROOT, StackConfig, dev_env
from leadflow.sdk import Publisher
from leadflow.simulate.runner import KafkaSink, publish_paced
from leadflow.simulate.scenario import generate


def ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


async def verdicts(env: dict[str, str], tenant: str) -> dict[str, tuple[str, list[str]]]:
    client = AsyncMongoClient(env["LEADFLOW_MONGO_URL"], tz_aware=True)
    try:
        cursor = client[env["LEADFLOW_MONGO_DB"]]["lead_touchpoints"].find(
            {"tenant_id": tenant, "kind": "touchpoint"}, {"event_id": 1, "verdict": 1, "reasons": 1})
        return {d["event_id"]: (d.get("verdict", "?"), d.get("reasons", [])) async for d in cursor}
    finally:
        await client.close()


def evaluate(sims, found: dict[str, tuple[str, list[str]]]) -> dict:
    tp = fp = fn = tn = jtp = jfp = 0
    by_reason, caught_by_reason, false_reasons = Counter(), Counter(), Counter()
    for sim in sims:
        verdict, reasons = found.get(sim.event.event_id, ("missing", []))
        flagged = verdict in ("suspect", "junk")
        if sim.junk:
            by_reason[sim.junk_reason] += 1
            caught_by_reason[sim.junk_reason] += flagged
            tp += flagged
            fn += not flagged
            jtp += verdict == "junk"
        else:
            fp += flagged
            tn += not flagged
            jfp += verdict == "junk"
            if flagged:
                false_reasons.update(reasons)
    junk_total = tp + fn
    return {
        "events": len(sims), "judged": sum(1 for s in sims if s.event.event_id in found), "junk_events": junk_total,
        "flag_precision": ratio(tp, tp + fp), "flag_recall": ratio(tp, junk_total),
        "junk_precision": ratio(jtp, jtp + jfp), "junk_recall": ratio(jtp, junk_total),
        "recall_by_reason": {r: (caught_by_reason[r], n) for r, n in sorted(by_reason.items())},
        "false_positive_reasons": dict(false_reasons.most_common()), "false_positives": fp, "true_negatives": tn,
    }


async def run(config: StackConfig, env: dict[str, str], events: int, seed: int, rate: float) -> dict:
    tenant = f"junk{int(time.time())}"
    sims, _ = generate(tenant, seed, events, datetime.now(UTC))
    base = counters(config)
    with Publisher(env["LEADFLOW_KAFKA_BOOTSTRAP"], topic_prefix=env["LEADFLOW_TOPIC_PREFIX"]) as publisher:
        publish_paced(sims, KafkaSink(publisher), rate=rate)
    deadline = time.time() + max(180.0, events / 20)
    while time.time() < deadline and counters(config)["leads"] - base["leads"] < len(sims):
        await asyncio.sleep(0.5)
    return evaluate(sims, await verdicts(env, tenant))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--rate", type=float, default=300.0)
    args = parser.parse_args()
    config = StackConfig.from_env()
    env = dev_env(config)
    print(machine())
    r = asyncio.run(run(config, env, args.events, args.seed, args.rate))
    print(f"events {r['events']}, judged {r['judged']}, junk in truth {r['junk_events']}")
    print(f"flagged (suspect or junk): precision {r['flag_precision']:.3f}, recall {r['flag_recall']:.3f}")
    print(f"junk verdict alone:        precision {r['junk_precision']:.3f}, recall {r['junk_recall']:.3f}")
    print("recall by junk reason:")
    for reason, (caught, n) in r["recall_by_reason"].items():
        print(f"  {reason:<18} {caught:>4}/{n:<4} {ratio(caught, n):.3f}")
    print(f"real persons' touchpoints flagged: {r['false_positives']} of {r['false_positives'] + r['true_negatives']}, "
          f"by reason: {r['false_positive_reasons']}")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
