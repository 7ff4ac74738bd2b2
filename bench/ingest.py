"""Benchmark of the HTTP ingest API: POST /v1/events of the running stack (`make up` first).

Consumes: the API at --url, with the first admin or ingest key of LEADFLOW_API_KEYS (`dev_env`).
Produces: simulated touchpoints of that key's tenant, posted as {"events": [...]} batches (the bytes the
simulator's HttpSink sends); they enter the pipeline like any other. Per batch size, one row:
- events/s and requests/s: events and requests answered 2xx / wall time from first post to last answer;
- p50/p99/max latency of the requests the API answered (429s excluded: they are counted apart);
- accepted: events the API reported accepted (duplicates or rejects show as a shortfall);
- non-2xx by status. A 429 is retried after its Retry-After; other failures are counted, not retried.
Event ids carry a run stamp, so a rerun with the same --seed posts fresh events, not duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime

import httpx

from bench import machine
from leadflow.devstack import ROOT, StackConfig, dev_env
from leadflow.simulate.scenario import generate


def ingest_key(spec: str) -> tuple[str, str]:
    """(key, tenant) of the first key allowed to ingest in `key=tenant:role[:consultant],...`."""
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, _, rest = item.partition("=")
        parts = rest.split(":")
        if len(parts) >= 2 and parts[1] in ("admin", "ingest"):
            return key, parts[0]
    raise SystemExit("LEADFLOW_API_KEYS holds no admin or ingest key")


async def one_size(url: str, key: str, tenant: str, size: int, count: int, concurrency: int, seed: int) -> dict:
    sims, _ = generate(tenant, seed + size, count, datetime.now(UTC))
    stamp = f"bench-{int(time.time() * 1000)}-{size}"
    raw = [s.event.model_copy(update={"event_id": f"{stamp}-{s.event.event_id}"}).to_bytes() for s in sims]
    bodies = [(min(size, len(raw) - i), b'{"events":[' + b",".join(raw[i:i + size]) + b"]}")
              for i in range(0, len(raw), size)]
    queue = iter(bodies)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    done = {"posted": 0, "requests": 0, "accepted": 0}

    async def worker(client: httpx.AsyncClient) -> None:
        for n, body in queue:  # one shared iterator: each batch goes to exactly one worker
            while True:
                t0 = time.perf_counter()
                try:
                    response = await client.post("/v1/events", content=body)
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                    break
                elapsed = time.perf_counter() - t0
                if response.status_code == 429:
                    statuses["429"] += 1
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                latencies.append(elapsed)
                if response.is_success:
                    done["posted"] += n
                    done["requests"] += 1
                else:
                    statuses[str(response.status_code)] += 1
                if response.status_code in (202, 422):
                    done["accepted"] += response.json().get("accepted", 0)
                break

    headers = {"X-Api-Key": key, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=60.0) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")  # noqa: E731
    return {"size": size, "events": len(raw), **done, "eps": done["posted"] / wall, "rps": done["requests"] / wall,
            "p50": pct(0.50), "p99": pct(0.99), "max": latencies[-1] * 1000 if latencies else float("nan"),
            "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config = StackConfig.from_env()
    parser.add_argument("--url", default=config.api_url)
    parser.add_argument("--batch", default="1,10,100,500", help="batch sizes, comma-separated")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients")
    parser.add_argument("--events", type=int, default=5000, help="events per batch size")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    key, tenant = ingest_key(dev_env(config)["LEADFLOW_API_KEYS"])
    print(machine())
    print(f"api {args.url}, tenant {tenant}, {args.concurrency} concurrent clients")
    print(f"{'batch':>6} {'events':>7} {'accepted':>8} {'requests':>8} {'events/s':>9} {'req/s':>8} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  non-2xx")
    limited = answered = 0
    for size in (int(b) for b in args.batch.split(",")):
        r = asyncio.run(one_size(args.url, key, tenant, size, args.events, args.concurrency, args.seed))
        other = " ".join(f"{k}:{v}" for k, v in sorted(r["statuses"].items())) or "-"
        print(f"{r['size']:>6} {r['events']:>7} {r['accepted']:>8} {r['requests']:>8} {r['eps']:>9.1f} {r['rps']:>8.1f} "
              f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f}  {other}", flush=True)
        limited += r["statuses"]["429"]
        answered += r["requests"] + r["statuses"]["429"]
    if limited and limited * 2 >= answered:
        print("hint: 429s dominate, so the per-key limit set these figures, not the API; for the bench, restart the "
              "API with a higher LEADFLOW_INGEST_RATE_PER_S and LEADFLOW_INGEST_BURST in its environment")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
