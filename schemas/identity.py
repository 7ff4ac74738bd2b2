"""Identity events: touchpoints with their One ID (`touchpoints.identified`) and merges (`identity.merges`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.base import Event
from schemas.touchpoints import IdentifierType, TouchpointReceived


class RejectedIdentifier(BaseModel):
    """An identifier the identity service would not link, and why (its value is never repeated)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: IdentifierType
    reason: str


class TouchpointIdentified(Event):
    """A touchpoint whose person is known: identifiers normalised, keyed by one_id."""

    tenant_id: str
    event_id: str
    one_id: str
    touchpoint: TouchpointReceived
    rejected_identifiers: list[RejectedIdentifier] = []
    identified_at: datetime


class PersonsMerged(Event):
    """Two persons turned out to be one: `loser` now lives on as `winner`."""

    merge_id: str
    tenant_id: str
    winner: str
    loser: str
    cause: Literal["shared_identifier"] = "shared_identifier"
    cause_identifier_type: IdentifierType
    event_id: str
    merged_at: datetime
