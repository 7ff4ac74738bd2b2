"""scoring settings (LEADFLOW_* environment)."""

from leadflow.runtime.settings import WorkerSettings


class ScoringSettings(WorkerSettings):
    web_port: int = 6103
