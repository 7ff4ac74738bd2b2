"""identity settings (LEADFLOW_* environment)."""

from leadflow.runtime.settings import PersonalDataSettings, WorkerSettings


class IdentitySettings(WorkerSettings, PersonalDataSettings):
    web_port: int = 6101
