"""Settings are built at startup from LEADFLOW_* and refuse to run personal data on default secrets."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from services.gateway.settings import GatewaySettings
from services.identity.settings import IdentitySettings
from services.leads.settings import LeadsSettings


def test_processes_with_personal_data_refuse_missing_or_default_secrets(monkeypatch):
    monkeypatch.delenv("LEADFLOW_HMAC_SECRET", raising=False)
    monkeypatch.delenv("LEADFLOW_FERNET_KEY", raising=False)
    for settings in (IdentitySettings, GatewaySettings):
        with pytest.raises(ValidationError) as caught:
            settings()
        assert {e["loc"][0] for e in caught.value.errors()} == {"hmac_secret", "fernet_key"}
    monkeypatch.setenv("LEADFLOW_HMAC_SECRET", "change-me")
    with pytest.raises(ValidationError):
        IdentitySettings(fernet_key=Fernet.generate_key().decode())


def test_settings_come_from_the_environment_and_are_frozen(monkeypatch):
    monkeypatch.setenv("LEADFLOW_HMAC_SECRET", "a-real-secret-of-some-length")
    monkeypatch.setenv("LEADFLOW_FERNET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("LEADFLOW_KAFKA_BOOTSTRAP", "broker:9093")
    identity = IdentitySettings()
    assert (identity.kafka_bootstrap, identity.web_port) == ("broker:9093", 6101)
    assert LeadsSettings().web_port == 6102  # no secrets needed where no identifier is read raw
    with pytest.raises(ValidationError):
        identity.web_port = 1


def test_a_kraft_cluster_id_never_starts_like_an_option():
    # One in 64 random ids starts with "-", and the storage tool then fails to format (seen in CI).
    import base64

    from leadflow.devstack import cluster_id

    ids = [cluster_id() for _ in range(2000)]
    assert not any(i.startswith("-") for i in ids) and len(set(ids)) == len(ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
