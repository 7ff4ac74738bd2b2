"""What the running stack costs at rest: each process's CPU while no event arrives, so only the timers
work (leads' dormancy, scoring's re-scores, notify's deadlines and pushes, the gauges).

A timer that finds its due documents by scanning costs time in proportion to the data, every run;
one that reads an agenda does not (`leadflow/runtime/agenda.py`). Run it on a stack that holds data
(after `make soak`, say) and compare code or settings. Reads utime+stime from /proc/<pid>/stat at the
start and end of --window seconds (after --settle seconds, for the first runs' sweeps) and prints
each process's share of one core, and the store's data size.
Run: `make up`, load it, then `.venv/bin/python -m bench.idle_cpu`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import machine
from leadflow.devstack import ROOT, WORKERS, Processes, StackConfig

PROCESSES = ("store", *WORKERS, "api", "kafka")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=60.0, help="seconds before the window (first sweeps)")
    parser.add_argument("--window", type=float, default=180.0)
    args = parser.parse_args()
    config = StackConfig.from_env()
    procs = Processes(config)
    pids = {name: pid for name in PROCESSES if (pid := procs.pid(name)) is not None}
    if "store" not in pids:
        print("the stack is not running; start it with `make up`", file=sys.stderr)
        return 2
    data = sum(p.stat().st_size for p in (config.var / "ferretdb").glob("*.sqlite*")) / 2**20
    print(machine())
    print(f"idle CPU over {args.window:.0f} s after {args.settle:.0f} s; store data {data:.0f} MiB")
    time.sleep(args.settle)
    start = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(args.window)
    for name, pid in pids.items():
        end = cpu_seconds(pid)
        if start[name] is None or end is None:
            print(f"{name:12} gone during the window")
            continue
        print(f"{name:12} {100 * (end - start[name]) / args.window:6.1f}% of a core")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
