"""gateway settings (LEADFLOW_* environment)."""

from pathlib import Path

from pydantic import Field, SecretStr

from leadflow.runtime.settings import PersonalDataSettings


class GatewaySettings(PersonalDataSettings):
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # key=tenant:role[:consultant_id],... ; roles: ingest, consultant, ops, admin
    api_keys: SecretStr = SecretStr("")
    max_batch: int = Field(default=1000, ge=1, le=10_000)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Ingest limit per API key and API process, in events: sustained rate and burst (429 beyond).
    ingest_rate_per_s: float = Field(default=2_000.0, gt=0)
    ingest_burst: int = Field(default=10_000, ge=1)
    # Consumer lag, exported on /metrics: how often it is read, and when a lagging partition whose
    # committed offset does not move counts as stalled.
    lag_interval_s: float = Field(default=10.0, gt=0)
    lag_stall_after_s: float = Field(default=300.0, gt=0)
    # Stream alerts on ops.alerts: a group whose lag grew at this many readings in a row and is this large.
    lag_growing_readings: int = Field(default=6, ge=2)
    lag_alert_min: int = Field(default=1000, ge=1)
    # The leads policy (alert thresholds for GET /v1/ops/sources); the same file as the leads service's.
    leads_policy_file: Path | None = None
    # The scoring rules book (GET /v1/scores/model reports the rules in force); the scoring service's file.
    scoring_rules_file: Path | None = None
    # The notify policy (pool rules for claims, working hours for deadlines); the notify service's file.
    notify_policy_file: Path | None = None
    # Spend per campaign, for cost per valid lead on the ops dashboard (TOML; services/gateway/dashboard.py).
    campaign_spend_file: Path | None = None
    # Apache ECharts' built file for the ops dashboard; unset: deploy/web/node_modules of this checkout.
    echarts_file: Path | None = None
