"""The ops dashboard's arithmetic, pure: who reached each stage, conversion between stages, latency
percentiles, campaign effectiveness with spend, and the spend file."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from schemas.leads import Stage
from services.gateway.dashboard import SpendError, campaigns, conversions, load_spend, percentile, reached
from services.leads.domain.source_quality import Counts
from services.leads.domain.stages import MAIN_PATH


def test_reached_counts_everybody_in_a_later_stage_and_conversions_follow():
    counts = {Stage.FOLLOWER: 50, Stage.LEAD: 30, Stage.OPPORTUNITY: 15, Stage.CUSTOMER: 5, Stage.LOST: 7}
    reach = dict(reached(counts, MAIN_PATH))
    assert reach[Stage.ANONYMOUS] == reach[Stage.FOLLOWER] == 100 and reach[Stage.LEAD] == 50
    assert reach[Stage.CUSTOMER] == 5 and reach[Stage.LOYAL] == 0
    rates = {(c["from_stage"], c["to_stage"]): c["rate"] for c in conversions(reached(counts, MAIN_PATH))}
    assert rates[(Stage.LEAD, Stage.OPPORTUNITY)] == 0.4 and rates[(Stage.CUSTOMER, Stage.LOYAL)] == 0.0
    assert conversions(reached({}, MAIN_PATH))[0]["rate"] is None


@pytest.mark.parametrize("q, expected", [(50, 5), (90, 9), (99, 10), (100, 10), (1, 1)])
def test_percentiles_by_nearest_rank(q, expected):
    assert percentile([float(v) for v in range(10, 0, -1)], q) == expected


def test_no_latencies_have_no_percentile():
    assert percentile([], 50) is None


def test_campaigns_rank_by_valid_leads_with_cost_where_spend_is_known():
    def row(dimension, value, valid, suspect=0, junk=0):
        return SimpleNamespace(dimension=dimension, value=value, counts=Counts(valid=valid, suspect=suspect, junk=junk))

    rows = [row("campaign", "a", 10, junk=10), row("channel", "web", 99), row("campaign", "b", 40)]
    out = campaigns(rows, {"a": 500.0})
    assert [(c["campaign"], c["valid"], c["cost_per_valid"]) for c in out] == [("b", 40, None), ("a", 10, 50.0)]
    assert out[1]["bad_rate"] == 0.5


def test_the_spend_file_names_a_bad_amount(tmp_path):
    good = tmp_path / "spend.toml"
    good.write_text('[tenants.demo]\n"cmp-1" = 12000\n', encoding="utf-8")
    assert load_spend(good) == {"demo": {"cmp-1": 12000.0}} and load_spend(None) == {}
    bad = tmp_path / "bad.toml"
    bad.write_text('[tenants.demo]\n"cmp-1" = -5\n', encoding="utf-8")
    with pytest.raises(SpendError, match="tenants.demo.cmp-1"):
        load_spend(bad)


def test_stage_ages_are_medians_in_days_per_stage():
    from datetime import UTC, datetime, timedelta

    from services.gateway.dashboard import stage_ages

    now = datetime(2026, 12, 1, tzinfo=UTC)
    entries = [(Stage.LEAD, now - timedelta(days=d)) for d in (1, 2, 9)] + [(Stage.OPPORTUNITY, now - timedelta(hours=12))]
    assert stage_ages(entries, now) == {"lead": 2.0, "opportunity": 0.5}
    assert stage_ages([], now) == {}
