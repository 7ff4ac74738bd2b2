"""Identity events.

`touchpoints.identified`: touchpoints with their One ID.
`identity.merges`: every change to who is who, keyed by the one_id it concerns so that a person's
changes stay in order: persons merged, a person split (the reversal of a wrong merge), a person erased.
`identity.commands`: what ops asked the identity service to do (split, decide a review, erase).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from schemas.base import Event
from schemas.touchpoints import IdentifierType, TouchpointReceived


class RejectedIdentifier(BaseModel):
    """An identifier the identity service would not link, and why (its value is never repeated)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: IdentifierType
    reason: str


class LinkedIdentifier(BaseModel):
    """An identifier as downstream services see it: pseudonymous, never the raw value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: IdentifierType
    namespace: str | None = None
    # The identifier's keyed hash (HMAC per tenant): stable, so it can be flagged (e.g. a bad number).
    link_id: str
    masked: str
    # What the value says without showing it (phones: mobile, landline, virtual_operator,
    # sequential_digits, repeated_digits, foreign).
    facts: list[str] = []


class TouchpointIdentified(Event):
    """A touchpoint whose person is known, keyed by one_id.

    No raw identifier leaves the identity service: `touchpoint.identifiers` carry masked values
    (138****1111), and `identifiers` the linked ones with their link ids. Identifiers a guardrail
    held back are in `rejected_identifiers` only.
    """

    tenant_id: str
    event_id: str
    one_id: str
    touchpoint: TouchpointReceived
    identifiers: list[LinkedIdentifier] = []
    rejected_identifiers: list[RejectedIdentifier] = []
    identified_at: datetime


MergeCause = Literal["shared_identifier", "probabilistic", "review_approved"]


class PersonsMerged(Event):
    """Two persons turned out to be one: `loser` now lives on as `winner` (the older of the two).

    Downstream services fold the loser's state into the winner's and redirect the loser's late events.
    """

    kind: Literal["merged"] = "merged"
    merge_id: str
    tenant_id: str
    winner: str
    loser: str
    cause: MergeCause = "shared_identifier"
    # The type of the identifier both persons carried (shared_identifier), else absent.
    cause_identifier_type: IdentifierType | None = None
    # Match score of a probabilistic or reviewed merge, 0..1.
    match_score: float | None = None
    # The touchpoint (or, for a reviewed merge, the command) that caused the merge.
    event_id: str
    merged_at: datetime


class PersonSplit(Event):
    """Ops moved some identifiers of `source` to a new person `new_one_id`: a wrong merge undone.

    `moved_event_ids` are the touchpoints that now belong to the new person (every identifier they
    carried moved); downstream services move their state for those events and rebuild both persons.
    """

    kind: Literal["split"] = "split"
    split_id: str
    tenant_id: str
    source: str
    new_one_id: str
    moved_identifier_types: list[IdentifierType]
    moved_event_ids: list[str] = []
    reason: str = ""
    requested_by: str
    event_id: str  # the command's id
    split_at: datetime


class PersonErased(Event):
    """A person was erased on request: every service deletes what it holds on `one_ids`."""

    kind: Literal["erased"] = "erased"
    erasure_id: str
    tenant_id: str
    one_id: str
    # The live one_id and every one_id that was merged into it.
    one_ids: list[str]
    requested_by: str
    event_id: str  # the command's id
    erased_at: datetime


IdentityChange = Annotated[PersonsMerged | PersonSplit | PersonErased, Field(discriminator="kind")]


class IdentityChanged(RootModel[IdentityChange]):
    """What `identity.merges` carries: one of the changes above, told apart by `kind`."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonsMerged | PersonSplit | PersonErased:
        return cls.model_validate_json(data).root


# ---- commands ------------------------------------------------------------------------------------
class SplitRequested(Event):
    kind: Literal["split"] = "split"
    command_id: str
    tenant_id: str
    one_id: str
    # Link ids (as listed by GET /v1/profiles/{one_id}/identity) of the identifiers to move.
    link_ids: list[str] = Field(min_length=1, max_length=1000)
    reason: str = Field(default="", max_length=500)
    requested_by: str
    requested_at: datetime


class ReviewDecided(Event):
    kind: Literal["review"] = "review"
    command_id: str
    tenant_id: str
    review_id: str
    approve: bool
    decided_by: str
    decided_at: datetime


class ErasureRequested(Event):
    kind: Literal["erase"] = "erase"
    command_id: str
    tenant_id: str
    one_id: str
    requested_by: str
    requested_at: datetime


IdentityCommand = Annotated[SplitRequested | ReviewDecided | ErasureRequested, Field(discriminator="kind")]


class IdentityCommanded(RootModel[IdentityCommand]):
    """What `identity.commands` carries (written by the API, consumed by identity)."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> SplitRequested | ReviewDecided | ErasureRequested:
        return cls.model_validate_json(data).root
