"""notify settings (LEADFLOW_* environment)."""

from leadflow.runtime.settings import WorkerSettings


class NotifySettings(WorkerSettings):
    web_port: int = 6104
