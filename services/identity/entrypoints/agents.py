"""identity agents.

Consumes touchpoints.raw and identity.commands; produces touchpoints.identified and identity.merges.
Dead letters go to touchpoints.raw.identity.dlq and identity.commands.identity.dlq.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leadflow.runtime.worker import Channels
from schemas.identity import IdentityCommanded
from schemas.topics import IDENTITY_COMMANDS, TOUCHPOINTS_RAW
from schemas.touchpoints import TouchpointReceived

if TYPE_CHECKING:
    from services.identity.bootstrap import IdentityHandlers


def register(channels: Channels, handlers: IdentityHandlers) -> None:
    channels.consume(
        TOUCHPOINTS_RAW, decode=TouchpointReceived.from_bytes, handle=handlers.touchpoints.identify,
        name="identity.identify",
    )
    channels.consume(
        IDENTITY_COMMANDS, decode=IdentityCommanded.from_bytes, handle=handlers.operations.on_command,
        name="identity.commands",
    )
