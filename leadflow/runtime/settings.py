"""Settings common to every process. Built at startup (never at import), frozen, from LEADFLOW_* env."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_MARKER = "change-me"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_db: str = "leadflow"
    topic_prefix: str = ""
    log_level: str = "INFO"
    # Partitions of each topic created at startup (dead-letter topics have one).
    partitions: int = Field(default=4, ge=1, le=256)
    replication_factor: int = Field(default=1, ge=1, le=5)
    # Does the store apply an update to one document atomically (MongoDB) or as a read and a write
    # (FerretDB v1)? None: ask the store at startup (`applies_updates_atomically`).
    store_atomic_updates: bool | None = None


class PersonalDataSettings(CommonSettings):
    """For the processes that touch raw identifiers (identity and the API); refuses default secrets."""

    # Master secret for keyed hashes of identifiers; per-tenant keys are derived from it.
    hmac_secret: SecretStr = SecretStr(DEV_SECRET_MARKER)
    # Fernet key (urlsafe base64, 32 bytes) encrypting raw identifier values at rest.
    fernet_key: SecretStr = SecretStr("")
    # TOML file of identity guardrails per tenant (services/identity/domain/policy.py); none: defaults.
    identity_policy_file: Path | None = None

    @field_validator("hmac_secret")
    @classmethod
    def _refuse_default_secret(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() == DEV_SECRET_MARKER or len(value.get_secret_value()) < 16:
            raise ValueError("set LEADFLOW_HMAC_SECRET to a random string of at least 16 characters")
        return value

    @field_validator("fernet_key")
    @classmethod
    def _fernet_key_present(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("set LEADFLOW_FERNET_KEY (cryptography.fernet.Fernet.generate_key())")
        return value


class WorkerSettings(CommonSettings):
    """A stream worker: its own HTTP port for /metrics and /healthz."""

    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: str = "var/faust/{conf.id}"
    # Static group membership (KIP-345): a worker that comes back under the same instance id gets its
    # partitions back at once, with no rebalance, instead of after the dead member's session timeout.
    # Set it only where the id is stable across restarts (the local stack's worker names, a
    # StatefulSet's pod names); two live workers must never share one.
    group_instance_id: str | None = None
    # How long the broker waits for a silent worker before giving its partitions to the others.
    session_timeout_s: float = Field(default=20.0, ge=6.0, le=90.0)
