"""identity agents. Consumes touchpoints.raw; produces touchpoints.identified and identity.merges;
dead letters go to touchpoints.raw.identity.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.topics import TOUCHPOINTS_RAW
from schemas.touchpoints import TouchpointReceived
from services.identity.handlers import IdentityService


def register(channels: Channels, service: IdentityService) -> None:
    channels.consume(
        TOUCHPOINTS_RAW, decode=TouchpointReceived.from_bytes, handle=service.identify, name="identity.identify"
    )
