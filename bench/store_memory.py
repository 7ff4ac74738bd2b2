"""The store's memory, taken apart, while a load runs (beside `make soak`).

Reads the running stack's FerretDB every --every seconds and prints one line per reading:
- resident memory, and its file-backed part (the binary's pages), from /proc/<pid>/smaps_rollup;
- what Go holds: memory obtained from the OS less what it released back, and the heap in use, from
  the store's `/debug/pprof/heap?debug=1` (start the stack with LEADFLOW_STORE_DEBUG_ADDR=host:port);
- the rest of the anonymous memory, outside Go's accounting: SQLite's page caches, which
  modernc.org/sqlite allocates itself (one cache per connection, 2 MiB by SQLite's default);
- how many SQLite files the store holds open (its connections) and the size of the data.
Run: `LEADFLOW_STORE_DEBUG_ADDR=127.0.0.1:6060 make up`, then `make soak` and, beside it,
`.venv/bin/python -m bench.store_memory --debug-addr 127.0.0.1:6060`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

from leadflow.devstack import ROOT, Processes, StackConfig

MIB = 2**20


def rollup(pid: int) -> dict[str, int]:
    """smaps_rollup's fields, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if m := re.match(r"(\w+):\s+(\d+) kB", line):
            fields[m[1]] = int(m[2])
    return fields


def go_memstats(debug_addr: str) -> dict[str, int]:
    """runtime.MemStats as the heap profile's text prints it, in bytes."""
    with urllib.request.urlopen(f"http://{debug_addr}/debug/pprof/heap?debug=1", timeout=10) as response:
        text = response.read().decode()
    return {m[1]: int(m[2]) for m in re.finditer(r"^# (\w+) = (\d+)$", text, re.MULTILINE)}


def sqlite_files_open(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").endswith(".sqlite")
        except OSError:
            continue  # closed meanwhile
    return count


def data_mib(data_dir: Path) -> float:
    return sum(p.stat().st_size for p in data_dir.glob("*.sqlite*")) / MIB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debug-addr", default=os.environ.get("LEADFLOW_STORE_DEBUG_ADDR", "127.0.0.1:6060"))
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=3900.0)
    args = parser.parse_args()
    config = StackConfig.from_env()
    pid = Processes(config).pid("store")
    if pid is None:
        print("the store is not running; start the stack with `make up`", file=sys.stderr)
        return 2
    print(f"{'min':>5} {'resident':>9} {'file':>5} {'go':>5} {'go heap':>8} {'outside go':>11} {'sqlite open':>12} "
          f"{'data':>6}   (MiB)")
    started = time.monotonic()
    while time.monotonic() - started < args.duration:
        mem, go = rollup(pid), go_memstats(args.debug_addr)
        held_by_go = (go["Sys"] - go["HeapReleased"]) / MIB
        outside = mem["Anonymous"] / 1024 - held_by_go
        print(f"{(time.monotonic() - started) / 60:5.1f} {mem['Rss'] / 1024:9.0f} {mem['Pss_File'] / 1024:5.0f} "
              f"{held_by_go:5.0f} {go['HeapInuse'] / MIB:8.0f} {outside:11.0f} {sqlite_files_open(pid):12d} "
              f"{data_mib(config.var / 'ferretdb'):6.0f}", flush=True)
        time.sleep(args.every)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
