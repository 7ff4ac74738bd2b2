"""The scale-out benchmark (in `make bench`): the long form of tests/chaos/test_scale_out.py.

The same stream of the simulator's touchpoints (10% duplicated event ids) goes through a stack of its
own (the crash test's: its own broker, store, API and workers on ports of their own, tests/chaos/harness.py),
three times, on topics of --partitions partitions:

1. one worker per service;
2. two workers per service from the start, steady;
3. two workers per service with rebalances mid-stream: scoring's and notify's second workers added,
   leads' second removed and added again, identity's second removed.

It prints, for each run, the throughput from the first send until every consumer group drained, and
how long the drain took after the last event; then whether runs 2 and 3 gave what run 1 gave (the same
real persons, grades, scores and tasks per person; no loss, no duplicates at any stage). Offer more
than one worker per service sustains (--rate) to measure the gain. Exits 1 on a difference or a problem,
never on a timing.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime

from bench import machine
from tests.chaos.harness import ChaosPlan, differences, one_ids_moved, run

SINGLE = ("identity", "leads", "scoring", "notify")
DOUBLE = (*SINGLE, "identity-2", "leads-2", "scoring-2", "notify-2")
REBALANCES = ("add:scoring-2", "add:notify-2", "remove:leads-2", "add:leads-2", "remove:identity-2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="events per second offered")
    parser.add_argument("--events", type=int, default=2400, help="distinct events in the stream")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    common = dict(rate=args.rate, events=args.events, partitions=args.partitions, seed=args.seed,
                  tenant=f"scale{uuid.uuid4().hex[:6]}", anchor=datetime.now(UTC).replace(microsecond=0),
                  kills_per_worker=0, restart_broker=False, restart_store=False, drain_limit_s=900.0)
    print(machine())
    print(f"scale-out: {args.events} events (+10% duplicates) offered at {args.rate:.0f}/s, "
          f"{args.partitions} partitions, tenant {common['tenant']}", flush=True)
    runs = {
        "1 worker per service": ChaosPlan(workers=SINGLE, **common),
        "2 workers per service": ChaosPlan(workers=DOUBLE, **common),
        "2 per service, 5 rebalances": ChaosPlan(workers=(*SINGLE, "identity-2", "leads-2"), actions=REBALANCES,
                                                 **common),
    }
    reports = {}
    for name, plan in runs.items():
        print(f"\n== {name}", flush=True)
        reports[name] = run(plan, say=lambda line: None)
        print("\n".join(reports[name].lines()), flush=True)

    reference = reports["1 worker per service"]
    failed = False
    print(f"\n{'run':<30} {'events/s':>9} {'drained after':>14} {'tasks':>6} {'vs one worker':>14}  same results")
    for name, report in reports.items():
        diff = differences(reference.outcome, report.outcome, junk=reference.junk_events) if report is not reference else []
        failed |= bool(report.problems or diff)
        gain = report.sustained_per_s / reference.sustained_per_s
        same = "(reference)" if report is reference else (
            "yes" if not diff else "NO: " + "; ".join(diff))
        moved = "" if report is reference else f" ({one_ids_moved(reference.outcome, report.outcome)} one_ids differ)"
        print(f"{name:<30} {report.sustained_per_s:>9.1f} {report.drained_after_s:>12.1f} s "
              f"{report.outcome.get('tasks', 0):>6} {gain:>13.2f}x  {same}{moved}"
              + ("" if not report.problems else f"; {len(report.problems)} problems"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
