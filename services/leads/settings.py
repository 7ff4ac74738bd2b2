"""leads settings (LEADFLOW_* environment)."""

from leadflow.runtime.settings import WorkerSettings


class LeadsSettings(WorkerSettings):
    web_port: int = 6102
