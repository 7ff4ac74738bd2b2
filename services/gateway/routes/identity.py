"""Identity for ops: why a person is who they are, conflicts and hubs, splits, erasure, audited reveals.

Changes are commands: the API publishes them to identity.commands and answers 202 with a status URL;
the identity service (the only writer of identity data) carries them out and emits the resulting
split, merge or erasure on identity.merges, which every downstream service honours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, status
from kafka.errors import KafkaError

from schemas.identity import ErasureRequested, ReviewDecided, SplitRequested
from services.gateway.deps import Admin, Ops, ServicesDep, Worker
from services.gateway.identity_commands import command_id
from services.gateway.models import (
    CommandAccepted,
    CommandStatus,
    ConflictsOut,
    PersonIdentityOut,
    RevealAuditOut,
    RevealIn,
    RevealOut,
    ReviewDecisionIn,
    ReviewOut,
    SplitIn,
)
from services.identity.operations import split_one_id

router = APIRouter(tags=["identity"])

OneId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
LinkId = Annotated[str, Path(min_length=16, max_length=128, pattern=r"^[a-f0-9]+$")]
IdempotencyKey = Annotated[str | None, Header(max_length=128, description="retries with the same key run once")]


@router.get("/v1/profiles/{one_id}/identity", response_model=PersonIdentityOut, responses={404: {}})
async def person_identity(one_id: OneId, caller: Ops, services: ServicesDep):
    """Every identifier of the person (masked) with why it belongs, and every merge that made them."""
    found = await services.identity.explain(caller.tenant_id, one_id)
    if found is None:
        raise HTTPException(404, "no such person in this tenant")
    return found


@router.get("/v1/identity/conflicts", response_model=ConflictsOut)
async def conflicts(caller: Ops, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100):
    """Touchpoints a guardrail held identifiers back from, newest first, and the quarantined hubs."""
    return {
        "conflicts": await services.identity.conflicts(caller.tenant_id, limit),
        "quarantined": await services.identity.quarantined(caller.tenant_id, limit),
    }


async def _send(services, tenant_id: str, command) -> None:
    try:
        await services.identity_commands.send(tenant_id, command)
    except KafkaError:
        raise HTTPException(503, "the broker did not accept the command; retry with the same Idempotency-Key") from None


@router.post("/v1/identity/split", response_model=CommandAccepted, status_code=status.HTTP_202_ACCEPTED,
             responses={503: {}})
async def split(body: SplitIn, caller: Ops, services: ServicesDep, idempotency_key: IdempotencyKey = None):
    """Move the chosen identifiers to a new person (undo a wrong merge). Carried out by identity."""
    cid = command_id(caller.tenant_id, idempotency_key)
    await _send(services, caller.tenant_id, SplitRequested(
        command_id=cid, tenant_id=caller.tenant_id, one_id=body.one_id, link_ids=body.link_ids, reason=body.reason,
        requested_by=caller.consultant_id or caller.role.value, requested_at=datetime.now(UTC),
    ))
    return CommandAccepted(command_id=cid, status_url=f"/v1/identity/commands/{cid}",
                           new_one_id=split_one_id(caller.tenant_id, cid))


ReviewId = Annotated[str, Path(min_length=3, max_length=200, pattern=r"^[A-Za-z0-9_:-]+\.[A-Za-z0-9_:-]+$")]


@router.get("/v1/identity/review", response_model=list[ReviewOut])
async def review_queue(caller: Ops, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100):
    """Possible matches waiting for a person's decision, most likely first (profiles masked)."""
    return await services.identity.matcher.review_queue(caller.tenant_id, limit)


@router.post("/v1/identity/review/{review_id}", response_model=CommandAccepted,
             status_code=status.HTTP_202_ACCEPTED, responses={503: {}})
async def decide_review(review_id: ReviewId, body: ReviewDecisionIn, caller: Ops, services: ServicesDep,
                        idempotency_key: IdempotencyKey = None):
    """Approve (the two persons merge, cause review_approved) or reject (never proposed again)."""
    cid = command_id(caller.tenant_id, idempotency_key)
    await _send(services, caller.tenant_id, ReviewDecided(
        command_id=cid, tenant_id=caller.tenant_id, review_id=review_id, approve=body.approve,
        decided_by=caller.consultant_id or caller.role.value, decided_at=datetime.now(UTC),
    ))
    return CommandAccepted(command_id=cid, status_url=f"/v1/identity/commands/{cid}")


@router.delete("/v1/profiles/{one_id}", response_model=CommandAccepted, status_code=status.HTTP_202_ACCEPTED,
               responses={503: {}})
async def erase(one_id: OneId, caller: Admin, services: ServicesDep, idempotency_key: IdempotencyKey = None):
    """Erase the person in every service (admin only). Identifiers, hashes and state are deleted."""
    cid = command_id(caller.tenant_id, idempotency_key)
    await _send(services, caller.tenant_id, ErasureRequested(
        command_id=cid, tenant_id=caller.tenant_id, one_id=one_id,
        requested_by=caller.consultant_id or caller.role.value, requested_at=datetime.now(UTC),
    ))
    return CommandAccepted(command_id=cid, status_url=f"/v1/identity/commands/{cid}")


@router.get("/v1/identity/commands/{command_id}", response_model=CommandStatus, responses={404: {}})
async def command_status(command_id: OneId, caller: Ops, services: ServicesDep):
    """What became of a command: 404 while identity has not carried it out yet."""
    found = await services.identity_operations.status(caller.tenant_id, command_id)
    if found is None:
        raise HTTPException(404, "not carried out yet (or unknown)")
    return CommandStatus(command_id=command_id, kind=found["kind"], status=found["status"], at=found["at"])


@router.post("/v1/profiles/{one_id}/identifiers/{link_id}/reveal", response_model=RevealOut, responses={404: {}})
async def reveal(one_id: OneId, link_id: LinkId, body: RevealIn, caller: Worker, services: ServicesDep):
    """The raw value of one identifier, for ops or for the consultant a task on this person is assigned
    to (to call them). Every reveal is audited with who, why and when."""
    if caller.consultant_id and not await services.notify.tasks(tenant_id=caller.tenant_id, consultant_id=caller.consultant_id,
                                                                status=None, one_id=one_id, limit=1):
        raise HTTPException(404, "this person has no such identifier")  # not theirs: as if it did not exist
    found = await services.identity.reveal(caller.tenant_id, one_id, link_id)
    if found is None:
        raise HTTPException(404, "this person has no such identifier")
    kind, value = found
    audit_id = await services.reveal_audit.record(
        tenant_id=caller.tenant_id, one_id=one_id, link_id=link_id, identifier_type=kind, role=caller.role.value,
        consultant_id=caller.consultant_id, reason=body.reason, at=datetime.now(UTC),
    )
    return RevealOut(link_id=link_id, type=kind, value=value, audit_id=audit_id)


@router.get("/v1/audit/reveals", response_model=list[RevealAuditOut])
async def reveal_audit(caller: Admin, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100):
    """Who saw which raw identifier of whom, why and when (admin only), newest first."""
    return [RevealAuditOut(audit_id=d["_id"], **d) for d in await services.reveal_audit.list(caller.tenant_id, limit)]
