"""leads settings (LEADFLOW_* environment)."""

from pathlib import Path

from pydantic import Field, SecretStr

from leadflow.runtime.settings import DEV_SECRET_MARKER, WorkerSettings


class LeadsSettings(WorkerSettings):
    web_port: int = 6102
    # Per-tenant quality, lifecycle, catalogue, tag and alert policy (services/leads/domain/policy.py).
    leads_policy_file: Path | None = None
    # Keys the hashes of IP addresses in the velocity counters (IPs are few enough to guess from a plain hash).
    hmac_secret: SecretStr = SecretStr(DEV_SECRET_MARKER)
    # How often the timer looks for persons gone dormant or become replacement candidates, and how many per run.
    timer_interval_s: float = Field(default=30.0, gt=0)
    timer_batch: int = Field(default=500, ge=1, le=10_000)
