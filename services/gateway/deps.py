"""FastAPI dependencies: the service container and the caller's principal, checked per role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from services.gateway.auth import Principal, Role, digest
from services.gateway.ingest import IngestService
from services.gateway.rate_limit import RateLimiter
from services.gateway.identity_commands import IdentityCommandClient, RevealAudit
from services.identity.handlers import IdentityService
from services.identity.operations import IdentityOperations
from services.leads.handlers import LeadService
from services.notify.handlers import NotifyService
from services.scoring.handlers import ScoringService


@dataclass(frozen=True)
class Services:
    ingest: IngestService
    identity: IdentityService
    identity_operations: IdentityOperations
    identity_commands: IdentityCommandClient
    reveal_audit: RevealAudit
    leads: LeadService
    scoring: ScoringService
    notify: NotifyService
    keys: dict[str, Principal]
    max_batch: int
    ingest_limit: RateLimiter


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def principal(services: ServicesDep, x_api_key: Annotated[str | None, Header()] = None) -> Principal:
    found = services.keys.get(digest(x_api_key)) if x_api_key else None
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or unknown X-Api-Key",
                            headers={"WWW-Authenticate": "X-Api-Key"})
    return found


def require(*roles: Role):
    """Allow the given roles (admin is always allowed)."""
    allowed = {*roles, Role.ADMIN}

    def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if caller.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {caller.role} may not do this")
        return caller

    return check


Ingestor = Annotated[Principal, Depends(require(Role.INGEST))]
Reader = Annotated[Principal, Depends(require(Role.OPS, Role.CONSULTANT))]
Ops = Annotated[Principal, Depends(require(Role.OPS))]
Admin = Annotated[Principal, Depends(require())]
Worker = Annotated[Principal, Depends(require(Role.CONSULTANT, Role.OPS))]
