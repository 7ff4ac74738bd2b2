"""`make chaos`: the crash test at full length (python -m tests.chaos --help)."""

from __future__ import annotations

import argparse
import sys

from bench import machine
from tests.chaos.harness import ChaosPlan, run


def main() -> int:
    defaults = ChaosPlan()
    parser = argparse.ArgumentParser(description=__doc__)
    # Below what the stack sustains on the 2-core machine (about 15/s, docs/benchmarks.md): a crash test
    # measures loss and duplicates, and a backlog that cannot drain would only measure capacity.
    parser.add_argument("--rate", type=float, default=12.0, help="events per second offered")
    parser.add_argument("--events", type=int, default=5400, help="distinct events in the stream")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per worker")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    plan = ChaosPlan(rate=args.rate, events=args.events, kills_per_worker=args.kills, seed=args.seed,
                     drain_limit_s=600.0)
    print(machine())
    report = run(plan, say=lambda line: print(line, flush=True))
    print("\n".join(report.lines()))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
