"""scoring settings (LEADFLOW_* environment)."""

from pathlib import Path

from leadflow.runtime.settings import WorkerSettings


class ScoringSettings(WorkerSettings):
    web_port: int = 6103
    # A YAML book naming each tenant's rule set (docs/scoring.md); unset: the car-dealer default for all.
    scoring_rules_file: Path | None = None
    rescore_interval_s: float = 30.0  # how often the timer looks for persons due for a re-score
    rescore_batch: int = 500  # persons per timer run; the next run takes the rest
