"""The soak (`make soak`): a steady stream through the running stack (`make up`) for an hour, watching
every process's memory and counting restarts.

Publishes the simulator's stream to touchpoints.raw at --rate (default 7/s, about half of what the stack
sustains on the 2-core machine; see docs/benchmarks.md) for --duration seconds, a tenant of its own.
After a warm-up (the JVM and the caches fill first) it samples each process's resident memory every
--every seconds from /proc, notes any process whose pid changed or that vanished, and at the end
prints memory at start and end (medians of the first and last five readings) and the growth, the
peak, the restarts, and the consumer lag. Exits 1 if a
process grew by more than --max-growth or restarted, or if the consumers did not keep up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime

from bench import machine
from leadflow.devstack import ROOT, WORKERS, Processes, StackConfig, dev_env
from leadflow.runtime.lag import consumer_lag, registry_groups
from leadflow.sdk import Publisher
from leadflow.simulate.runner import KafkaSink, publish_paced
from leadflow.simulate.scenario import generate

PROCESSES = ("kafka", "store", *WORKERS, "api")


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def snapshot(procs: Processes) -> dict[str, tuple[int | None, int | None]]:
    """name -> (pid, resident KiB)."""
    out = {}
    for name in PROCESSES:
        pid = procs.pid(name)
        out[name] = (pid, rss_kib(pid) if pid else None)
    return out


READINGS_PER_END = 5  # start and end are the medians of the first and of the last five readings


def memory(readings: list[dict[str, int | None]], name: str) -> tuple[float | None, float | None, float]:
    """A process's resident memory at the start and at the end of the soak, and its peak. A garbage-
    collected heap (FerretDB's Go, the JVM) swings between collections, so one reading at each end
    would measure where in its cycle the process happened to be: the median of five readings does not."""
    values = [r[name] for r in readings if r.get(name)]
    if not values:
        return None, None, 0.0
    return (statistics.median(values[:READINGS_PER_END]), statistics.median(values[-READINGS_PER_END:]),
            float(max(values)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=7.0)
    parser.add_argument("--duration", type=float, default=3600.0)
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds before the first memory reading")
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--max-growth", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    config = StackConfig.from_env()
    env = dev_env(config)
    procs = Processes(config)
    print(machine())
    missing = [name for name in PROCESSES if procs.pid(name) is None]
    if missing:
        print(f"not running: {', '.join(missing)}; start the stack with `make up`", file=sys.stderr)
        return 2
    tenant = f"soak{int(time.time())}"
    events, _ = generate(tenant, args.seed, int(args.rate * args.duration), datetime.now(UTC))
    publisher = Publisher(env["LEADFLOW_KAFKA_BOOTSTRAP"], topic_prefix=env["LEADFLOW_TOPIC_PREFIX"])
    sending = threading.Thread(target=publish_paced, args=(events, KafkaSink(publisher)),
                               kwargs={"rate": args.rate}, daemon=True)
    print(f"soak: {len(events)} events at {args.rate:.0f}/s for {args.duration / 60:.0f} min, tenant {tenant}", flush=True)
    started = time.monotonic()
    sending.start()
    time.sleep(args.warmup)
    first = snapshot(procs)
    print("after warm-up: " + ", ".join(f"{n} {kib / 1024:.0f} MiB" for n, (_, kib) in first.items() if kib), flush=True)
    restarts: dict[str, int] = dict.fromkeys(PROCESSES, 0)
    last = first
    readings = [{n: kib for n, (_, kib) in first.items()}]
    groups = registry_groups(env["LEADFLOW_TOPIC_PREFIX"])
    while sending.is_alive():
        sending.join(timeout=args.every)
        now = snapshot(procs)
        for name in PROCESSES:
            if now[name][0] != last[name][0]:
                restarts[name] += 1
        last = now
        readings.append({n: kib for n, (_, kib) in now.items()})
        lag = sum(r.lag for r in consumer_lag(env["LEADFLOW_KAFKA_BOOTSTRAP"], groups))
        print(f"{(time.monotonic() - started) / 60:5.1f} min: lag {lag}, "
              + ", ".join(f"{n} {kib / 1024:.0f}" for n, (_, kib) in now.items() if kib), flush=True)
    publisher.close()
    time.sleep(30)  # the tail of the stream
    lag = sum(r.lag for r in consumer_lag(env["LEADFLOW_KAFKA_BOOTSTRAP"], groups))
    readings.append({n: kib for n, (_, kib) in snapshot(procs).items()})
    failed = lag > args.rate * 60  # more than a minute behind
    print(f"\n{'process':<12} {'start MiB':>10} {'end MiB':>9} {'growth':>8} {'peak MiB':>9} {'restarts':>9}")
    for name in PROCESSES:
        a, b, peak = memory(readings, name)
        growth = (b - a) / a if a and b else float("nan")
        failed |= bool(restarts[name]) or not growth <= args.max_growth
        print(f"{name:<12} {(a or 0) / 1024:>10.0f} {(b or 0) / 1024:>9.0f} {growth:>8.1%} {peak / 1024:>9.0f} "
              f"{restarts[name]:>9}")
    print(f"consumer lag at the end: {lag} records")
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
