"""gateway settings (LEADFLOW_* environment)."""

from pydantic import Field, SecretStr

from leadflow.runtime.settings import PersonalDataSettings


class GatewaySettings(PersonalDataSettings):
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # key=tenant:role[:consultant_id],... ; roles: ingest, consultant, ops, admin
    api_keys: SecretStr = SecretStr("")
    max_batch: int = Field(default=1000, ge=1, le=10_000)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
