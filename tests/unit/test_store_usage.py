"""Rules of store use that the store cannot be trusted to enforce, checked in the sources.

FerretDB v1.24 runs an `update` command's statements one after another, and keeps each statement's
SQLite read open until the whole command ends (a `defer` inside its loop, internal/handler/msg_update.go);
its pool holds 100 SQLite connections per database. A command of 100 statements therefore waits for
itself for ever, and every other client of that database waits with it (seen 2026-12-07 with
`bench/store_floor.py`: the whole store stopped answering, `listDatabases` included, until restarted);
so do four clients sending 50 each at once.
Bulk updates are no cheaper per document there either (docs/benchmarks.md). So the product sends no
multi-statement update: one `update_one`/`update_many`/`replace_one`/`find_one_and_update` per command.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("leadflow", "services", "schemas")
MULTI_STATEMENT = {"bulk_write", "UpdateOne", "UpdateMany", "ReplaceOne"}


def calls_in(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in MULTI_STATEMENT:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return found


def test_the_product_sends_no_multi_statement_update():
    sources = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(sources) > 50  # the scan sees the product, not an empty directory
    assert [hit for p in sources for hit in calls_in(p)] == []


def test_the_scan_finds_a_bulk_write():
    sample = ROOT / "bench" / "store_floor.py"  # the bench sends them on purpose, in batches under 100
    assert any("bulk_write" in hit for hit in calls_in(sample))
