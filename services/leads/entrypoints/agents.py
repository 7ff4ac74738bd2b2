"""leads agents. Consumes touchpoints.identified; produces leads.changes;
dead letters go to touchpoints.identified.leads.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.identity import TouchpointIdentified
from schemas.topics import TOUCHPOINTS_IDENTIFIED
from services.leads.handlers import LeadService


def register(channels: Channels, service: LeadService) -> None:
    channels.consume(
        TOUCHPOINTS_IDENTIFIED,
        decode=TouchpointIdentified.from_bytes,
        handle=service.on_identified,
        name="leads.apply",
    )
