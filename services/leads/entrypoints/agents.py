"""leads agents. Consumes touchpoints.identified and identity.merges (merges, splits, erasures);
produces leads.changes; dead letters go to touchpoints.identified.leads.dlq and identity.merges.leads.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.identity import IdentityChanged, TouchpointIdentified
from schemas.topics import IDENTITY_MERGES, TOUCHPOINTS_IDENTIFIED
from services.leads.handlers import LeadService


def register(channels: Channels, service: LeadService) -> None:
    channels.consume(
        TOUCHPOINTS_IDENTIFIED,
        decode=TouchpointIdentified.from_bytes,
        handle=service.on_identified,
        name="leads.apply",
    )
    channels.consume(
        IDENTITY_MERGES,
        decode=IdentityChanged.from_bytes,
        handle=service.on_identity_changed,
        name="leads.identity_changes",
    )
