"""Building blocks for identity tests against the real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.fernet import Fernet

from schemas.topics import IDENTITY_MERGES, TOUCHPOINTS_IDENTIFIED
from schemas.touchpoints import TouchpointReceived
from leadflow.runtime.leases import PersonLeases
from services.identity.adapters.profiles import ProfileRepository
from services.identity.adapters.repository import IdentityRepository
from services.identity.adapters.vault import Vault
from services.identity.domain.policy import PolicyBook
from services.identity.handlers import IdentityService
from services.identity.matcher import Matcher
from services.identity.operations import IdentityOperations

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SECRET = b"s" * 32
FERNET_KEY = Fernet.generate_key().decode()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def make_service(db, policies: PolicyBook | None = None) -> IdentityService:
    """The identity service as bootstrap wires it, probabilistic matching included."""
    repo, profiles = IdentityRepository(db), ProfileRepository(db)
    await repo.ensure_indexes()
    await profiles.ensure_indexes()
    await PersonLeases(db).ensure_indexes()
    clock = Clock()
    service = IdentityService(repo, master_secret=SECRET, vault=Vault(FERNET_KEY), clock=clock, policies=policies)
    service.matcher = Matcher(service, profiles, master_secret=SECRET, clock=clock)
    return service


def operations(service: IdentityService) -> IdentityOperations:
    return IdentityOperations(service, clock=Clock(), reviews=service.matcher)


def event(event_id: str, *identifiers: tuple[str, str], tenant: str = "t1", minute: int = 0,
          **attributes) -> TouchpointReceived:
    return TouchpointReceived.model_validate({
        "event_id": event_id, "event_type": "form_submitted", "tenant_id": tenant,
        "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(),
        "source": {"system": "it", "channel": "web"}, "attributes": attributes,
        "identifiers": [{"type": t, "value": v, **({"namespace": "wx_app"} if t == "wechat_openid" else {})}
                        for t, v in identifiers],
    })


def one_id_of(handled) -> str:
    return next(o.value.one_id for o in handled.outgoing if o.topic is TOUCHPOINTS_IDENTIFIED)


def merges_of(handled) -> list:
    return [o.value for o in handled.outgoing if o.topic is IDENTITY_MERGES]
