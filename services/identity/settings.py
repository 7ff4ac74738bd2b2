"""identity settings (LEADFLOW_* environment)."""

from leadflow.runtime.settings import WorkerSettings


class IdentitySettings(WorkerSettings):
    web_port: int = 6101
