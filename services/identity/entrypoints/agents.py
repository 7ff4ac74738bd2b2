"""identity agents. Consumes touchpoints.raw; produces touchpoints.identified and identity.merges;
dead letters go to touchpoints.raw.identity.dlq."""

from __future__ import annotations

from leadflow.runtime.worker import Channels
from schemas.topics import TOUCHPOINTS_RAW
from schemas.touchpoints import TouchpointReceived
from services.identity.handlers import IdentityService


def register(channels: Channels, service: IdentityService) -> None:
    processor = channels.processor(TOUCHPOINTS_RAW)

    @channels.app.agent(channels.source(TOUCHPOINTS_RAW), concurrency=1, name="identity.identify")
    async def identify(stream):
        async for record in stream.events():
            await processor.process(
                key=record.key,
                value=record.value,
                partition=record.message.partition,
                offset=record.message.offset,
                decode=TouchpointReceived.from_bytes,
                handle=service.identify,
            )
