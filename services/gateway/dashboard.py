"""The ops dashboard's arithmetic, pure: conversion between funnel stages, latency percentiles, campaign
effectiveness with spend, and the spend file (`LEADFLOW_CAMPAIGN_SPEND_FILE`, TOML):

```toml
[tenants.demo]
"cmp-dy-2611" = 12000.0    # CNY spent on the campaign
```
"""

from __future__ import annotations

import math
import statistics
import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.leads import Stage


class SpendError(ValueError):
    pass


def reached(counts: Mapping[Stage, int], path: Sequence[Stage]) -> list[tuple[Stage, int]]:
    """Persons who reached each stage of the main path: those in it now and in every later stage."""
    out, total = [], 0
    for stage in reversed(path):
        total += counts.get(stage, 0)
        out.append((stage, total))
    return list(reversed(out))


def conversions(reach: Sequence[tuple[Stage, int]]) -> list[dict[str, Any]]:
    """The share of persons who got from each stage to the next."""
    return [{"from_stage": a, "to_stage": b, "rate": round(nb / na, 4) if na else None}
            for (a, na), (b, nb) in zip(reach, reach[1:])]


def stage_ages(entries: Sequence[tuple[Stage, datetime]], now: datetime) -> dict[str, float]:
    """Median days persons have spent so far in the stage they are in, per stage."""
    by: dict[str, list[float]] = {}
    for stage, entered in entries:
        by.setdefault(str(stage), []).append(max((now - entered).total_seconds(), 0.0) / 86_400)
    return {stage: round(statistics.median(days), 2) for stage, days in by.items()}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def campaigns(rows: Sequence[Any], spend: Mapping[str, float]) -> list[dict[str, Any]]:
    """Valid leads per campaign (from the source-quality rows of dimension campaign), with the cost per valid
    lead where the campaign's spend is configured; the most valid leads first."""
    out = []
    for row in rows:
        if row.dimension != "campaign":
            continue
        cost = spend.get(row.value)
        out.append({"campaign": row.value, "valid": row.counts.valid, "total": row.counts.total,
                    "bad_rate": round(row.counts.bad_rate, 4), "spend": cost,
                    "cost_per_valid": round(cost / row.counts.valid, 2) if cost is not None and row.counts.valid else None})
    return sorted(out, key=lambda c: (-c["valid"], c["campaign"]))


def load_spend(path: str | Path | None) -> dict[str, dict[str, float]]:
    """{tenant: {campaign: spend}} from the spend file; empty without one."""
    if path is None:
        return {}
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpendError(f"{path}: {exc}") from None
    tenants = data.get("tenants", {})
    if set(data) - {"tenants"} or not isinstance(tenants, dict):
        raise SpendError(f"{path}: a [tenants.<id>] table per tenant, campaign = amount")
    out: dict[str, dict[str, float]] = {}
    for tenant, table in tenants.items():
        for campaign, amount in dict(table).items():
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
                raise SpendError(f"{path}: tenants.{tenant}.{campaign}: an amount, at least 0")
            out.setdefault(str(tenant), {})[str(campaign)] = float(amount)
    return out
